// Package httpstatus records the status an HTTP handler answered with,
// for the middlewares that log, count and trace requests.
package httpstatus

import "net/http"

// Writer is an http.ResponseWriter that remembers the first final status
// written through it (200 when the handler writes a body without one).
// Unwrap lets http.ResponseController reach the underlying writer's
// Flush, deadlines and hijacking.
type Writer struct {
	http.ResponseWriter
	status int
}

// Wrap returns w as a Writer.
func Wrap(w http.ResponseWriter) *Writer { return &Writer{ResponseWriter: w} }

// Status is the status answered so far: 0 when nothing was written.
func (w *Writer) Status() int { return w.status }

// WriteHeader records the first final status and passes it on.
func (w *Writer) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write answers 200 unless a status was written first.
func (w *Writer) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush passes a flush on, for handlers that assert http.Flusher.
func (w *Writer) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap returns the underlying writer.
func (w *Writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }
