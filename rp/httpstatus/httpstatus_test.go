package httpstatus

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestWriter(t *testing.T) {
	tests := []struct {
		name    string
		handler func(w http.ResponseWriter)
		want    int
	}{
		{"ShouldBeZeroWhenNothingIsWritten", func(w http.ResponseWriter) {}, 0},
		{"ShouldBe200ForABodyWithoutStatus", func(w http.ResponseWriter) { w.Write([]byte("x")) }, 200},
		{"ShouldKeepTheFirstFinalStatus", func(w http.ResponseWriter) { w.WriteHeader(404); w.WriteHeader(500) }, 404},
		{"ShouldSkipInformationalStatuses", func(w http.ResponseWriter) { w.WriteHeader(103); w.WriteHeader(201) }, 201},
		{"ShouldBe200AfterAFlush", func(w http.ResponseWriter) { w.(http.Flusher).Flush() }, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			w := Wrap(rec)
			tt.handler(w)
			if w.Status() != tt.want {
				t.Fatalf("status %d, want %d", w.Status(), tt.want)
			}
			if w.Unwrap() != rec {
				t.Fatal("Unwrap does not return the wrapped writer")
			}
		})
	}
}
