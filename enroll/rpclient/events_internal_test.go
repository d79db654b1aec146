package rpclient

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// parseStream runs a whole stream through the scanner and the parser.
func parseStream(stream string) ([]sseEvent, time.Duration, error) {
	sc := newEventScanner(strings.NewReader(stream))
	var p sseParser
	var out []sseEvent
	for sc.Scan() {
		ev, err := p.line(sc.Bytes())
		if err != nil {
			return out, p.retry, err
		}
		if ev != nil {
			out = append(out, *ev)
		}
	}
	return out, p.retry, sc.Err()
}

// TestEventStreamInterpretation follows the examples and rules of WHATWG
// HTML §9.2.6.
func TestEventStreamInterpretation(t *testing.T) {
	tests := []struct {
		name   string
		stream string
		want   []sseEvent
		retry  time.Duration
	}{
		{"ShouldReadTheServersEvents", "retry: 1000\n\nid: 1\nevent: status\ndata: {\"a\":1}\n\n",
			[]sseEvent{{typ: "status", data: []byte(`{"a":1}`), id: "1"}}, time.Second},
		{"ShouldDefaultTheTypeToMessage", "data: x\n\n", []sseEvent{{typ: "message", data: []byte("x")}}, 0},
		{"ShouldJoinDataLinesWithNewlines", "data: a\ndata:b\ndata\n\n", []sseEvent{{typ: "message", data: []byte("a\nb\n")}}, 0},
		{"ShouldStripOneLeadingSpaceOnly", "data:  two\n\n", []sseEvent{{typ: "message", data: []byte(" two")}}, 0},
		{"ShouldAcceptCRLFAndLoneCR", "event: status\r\ndata: 1\r\rdata: 2\r\n\r\n",
			[]sseEvent{{typ: "status", data: []byte("1")}, {typ: "message", data: []byte("2")}}, 0},
		{"ShouldSkipCommentsAndUnknownFields", ": keep-alive\nfoo: bar\n\n: again\n\ndata: x\n\n", []sseEvent{{typ: "message", data: []byte("x")}}, 0},
		{"ShouldDropAnEventWithoutData", "event: status\n\ndata: y\n\n", []sseEvent{{typ: "message", data: []byte("y")}}, 0},
		{"ShouldDropAnUnfinishedLastEvent", "data: x\n\ndata: cut", []sseEvent{{typ: "message", data: []byte("x")}}, 0},
		{"ShouldDropALeadingByteOrderMark", "\xEF\xBB\xBFdata: x\n\n", []sseEvent{{typ: "message", data: []byte("x")}}, 0},
		{"ShouldIgnoreANonNumericRetry", "retry: 10s\nretry: -1\ndata: x\n\n", []sseEvent{{typ: "message", data: []byte("x")}}, 0},
		{"ShouldKeepTheLastIDAcrossEvents", "id: 7\ndata: a\n\ndata: b\n\n",
			[]sseEvent{{typ: "message", data: []byte("a"), id: "7"}, {typ: "message", data: []byte("b"), id: "7"}}, 0},
		{"ShouldIgnoreAnIDWithNUL", "id: 7\ndata: a\n\nid: 8\x009\ndata: b\n\n",
			[]sseEvent{{typ: "message", data: []byte("a"), id: "7"}, {typ: "message", data: []byte("b"), id: "7"}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, retry, err := parseStream(tt.stream)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("events %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i].typ != tt.want[i].typ || !bytes.Equal(got[i].data, tt.want[i].data) || got[i].id != tt.want[i].id {
					t.Errorf("event %d: %+v, want %+v", i, got[i], tt.want[i])
				}
			}
			if retry != tt.retry {
				t.Errorf("retry %v, want %v", retry, tt.retry)
			}
		})
	}

	t.Run("ShouldRefuseAnOverlongLine", func(t *testing.T) {
		_, _, err := parseStream("data: " + strings.Repeat("x", maxEventLineBytes) + "\n\n")
		if !errors.Is(err, bufio.ErrTooLong) {
			t.Fatalf("err = %v, want bufio.ErrTooLong", err)
		}
	})
	t.Run("ShouldRefuseAnOverlongEvent", func(t *testing.T) {
		line := "data: " + strings.Repeat("x", maxEventLineBytes/2) + "\n"
		_, _, err := parseStream(strings.Repeat(line, 2*maxEventDataBytes/maxEventLineBytes+1) + "\n")
		if err == nil || !strings.Contains(err.Error(), "longer than") {
			t.Fatalf("err = %v, want an overlong event", err)
		}
	})
}

// FuzzEventStream feeds any bytes to the scanner and parser: they must
// neither panic nor keep more than their bounds.
func FuzzEventStream(f *testing.F) {
	for _, seed := range []string{
		"retry: 1000\n\nid: 1\nevent: status\ndata: {\"sessionId\":\"x\",\"status\":\"pending\"}\n\n",
		": keep-alive\r\n\r\n", "data\rdata:\r\n\n", "\xEF\xBB\xBF:\n", "id: \x00\n\n", "event\nretry\n\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		sc := newEventScanner(bytes.NewReader(stream))
		var p sseParser
		for sc.Scan() {
			if len(sc.Bytes()) > maxEventLineBytes {
				t.Fatalf("a line of %d bytes", len(sc.Bytes()))
			}
			ev, err := p.line(sc.Bytes())
			if err != nil {
				return
			}
			if len(p.data) > maxEventDataBytes || (ev != nil && len(ev.data) > maxEventDataBytes) {
				t.Fatal("an event over its bound")
			}
		}
	})
}

// TestEventsStreamIdleTimeout: a stream that goes silent (no event, no
// keep-alive comment) is given up with ErrNetwork rather than waited on
// for ever.
func TestEventsStreamIdleTimeout(t *testing.T) {
	old := idleTimeout
	idleTimeout = 200 * time.Millisecond
	t.Cleanup(func() { idleTimeout = old })
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "event: status\ndata: {\"sessionId\":\"abc\",\"status\":\"pending\",\"expiresAt\":\"2030-01-01T00:00:00Z\"}\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	c, err := New(Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.RecoveryEvents(context.Background(), "abc", "token")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if st, err := s.Next(); err != nil || st.Status != "pending" {
		t.Fatalf("first event: %+v, %v", st, err)
	}
	start := time.Now()
	_, err = s.Next()
	if !errors.Is(err, ErrNetwork) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a silent stream = %v, want ErrNetwork", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("gave up after %v", took)
	}
}
