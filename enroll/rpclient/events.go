package rpclient

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keydesk/keydesk/rp/api"
)

// Bounds of an events stream: the server's events are a status of a few
// hundred bytes; a line or an event longer than these is not the API's,
// and a stream that stays silent longer than its keep-alives allow is
// dead (the server sends a comment every 15 seconds).
const (
	maxEventLineBytes = 16 << 10
	maxEventDataBytes = 64 << 10
	// EventsIdleTimeout is how long an events stream may send nothing,
	// not even a keep-alive comment, before RecoveryEvents' Next gives up
	// on it with ErrNetwork.
	EventsIdleTimeout = 45 * time.Second
)

// idleTimeout is EventsIdleTimeout, shortened by tests.
var idleTimeout = EventsIdleTimeout

// RecoveryEvents is a handoff's events stream (text/event-stream), as
// RecoveryEvents opened it: Next returns each status the server sends, at
// once and on every change. It is not for concurrent use, except Close.
type RecoveryEvents struct {
	ctx    context.Context // the caller's
	id     string
	op     string
	body   io.ReadCloser
	lines  *bufio.Scanner
	parser sseParser
	cancel context.CancelFunc
	idle   *time.Timer
	// idled is set when the idle timer ended the stream.
	idled     atomic.Bool
	closeOnce sync.Once
}

// RecoveryEvents opens handoff id's events stream with its desktop token.
// The response's headers must come within the client's timeout; the
// stream then lasts as long as the server keeps it (until the handoff is
// refused, redeemed or expired, or a few minutes), or until ctx ends or
// Close. It is one request, never retried: when the stream fails, the
// caller decides whether to open it again (after Retry) or to fall back
// on RecoveryStatus. Errors are *Error: a wrong token is ErrWrongDesktop,
// an unknown handoff ErrNotFound, an answer that is not an events stream
// ErrBadResponse.
//
// A custom Config.HTTPClient with a Timeout would cut the stream; the
// default client has none.
func (c *Client) RecoveryEvents(ctx context.Context, id, desktopToken string) (*RecoveryEvents, error) {
	const op = "follow recovery"
	if err := checkRecoveryArgs(op, id, desktopToken); err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(sctx, http.MethodGet, c.base+recoveryPath(id, "events"), nil)
	if err != nil {
		cancel()
		return nil, &Error{Op: op, Err: err, kind: ErrBadArgument}
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("Authorization", "Bearer "+desktopToken)
	var timedOut atomic.Bool
	headers := time.AfterFunc(c.timeout, func() { timedOut.Store(true); cancel() })
	resp, err := c.hc.Do(req)
	headers.Stop()
	if err != nil {
		cancel()
		e, _ := transportError(call{op: op}, err)
		e.Attempts = 1
		switch {
		case ctx.Err() != nil:
			return nil, ctxError(ctx, e)
		case timedOut.Load():
			e.kind, e.Err = ErrNetwork, fmt.Errorf("no answer within %v: %w", c.timeout, context.DeadlineExceeded)
		}
		return nil, e
	}
	fail := func(e *Error) (*RecoveryEvents, error) {
		resp.Body.Close()
		cancel()
		e.Attempts = 1
		return nil, e
	}
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, c.maxBody+1))
		if resp.StatusCode < 400 {
			return fail(&Error{Op: op, Status: resp.StatusCode, kind: ErrBadResponse,
				Err: fmt.Errorf("unexpected HTTP %d %s; check the server address", resp.StatusCode, http.StatusText(resp.StatusCode))})
		}
		return fail(problemError(op, resp, raw, int64(len(raw)) > c.maxBody))
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "text/event-stream" {
		return fail(&Error{Op: op, Status: resp.StatusCode, kind: ErrBadResponse,
			Err: fmt.Errorf("the answer is %s, not an event stream", printable(resp.Header.Get("Content-Type")))})
	}
	s := &RecoveryEvents{ctx: ctx, id: id, op: op, body: resp.Body, cancel: cancel, lines: newEventScanner(resp.Body)}
	s.idle = time.AfterFunc(idleTimeout, func() { s.idled.Store(true); cancel() })
	return s, nil
}

// Next returns the stream's next status. It returns io.EOF when the
// server ended the stream (after a final status, or at its own deadline),
// and an *Error when the stream failed: ErrNetwork for a cut connection or
// EventsIdleTimeout of silence, ErrBadResponse for what is not the API's
// events (an overlong line, a status that is not one). When ctx ended,
// the error matches ctx's.
func (s *RecoveryEvents) Next() (api.RecoveryStatus, error) {
	for s.lines.Scan() {
		s.idle.Reset(idleTimeout)
		ev, err := s.parser.line(s.lines.Bytes())
		if err != nil {
			s.Close()
			return api.RecoveryStatus{}, &Error{Op: s.op, Err: err, kind: ErrBadResponse}
		}
		if ev == nil || ev.typ != "status" {
			continue // a field, a comment, or an event this client does not know
		}
		var st api.RecoveryStatus
		if err := json.Unmarshal(ev.data, &st); err != nil {
			s.Close()
			return api.RecoveryStatus{}, &Error{Op: s.op, kind: ErrBadResponse,
				Err: fmt.Errorf("a status event is not the JSON the API sends: %w", err)}
		}
		if err := checkRecoveryStatus(&st, s.id); err != nil {
			s.Close()
			return api.RecoveryStatus{}, &Error{Op: s.op, Err: err, kind: ErrBadResponse}
		}
		return st, nil
	}
	err := s.lines.Err()
	s.Close()
	switch {
	case err == nil:
		return api.RecoveryStatus{}, io.EOF
	case errors.Is(err, bufio.ErrTooLong):
		return api.RecoveryStatus{}, &Error{Op: s.op, kind: ErrBadResponse,
			Err: fmt.Errorf("the event stream has a line longer than %d bytes", maxEventLineBytes)}
	case s.idled.Load():
		return api.RecoveryStatus{}, &Error{Op: s.op, kind: ErrNetwork,
			Err: fmt.Errorf("the event stream sent nothing for %v: %w", idleTimeout, context.DeadlineExceeded)}
	case s.ctx.Err() != nil:
		return api.RecoveryStatus{}, ctxError(s.ctx, &Error{Op: s.op, Err: err})
	}
	return api.RecoveryStatus{}, &Error{Op: s.op, Err: err, kind: ErrNetwork}
}

// Retry is the reconnection time the server asked for (its "retry"
// field), 0 when it named none: how long to wait before opening the
// stream again after it failed.
func (s *RecoveryEvents) Retry() time.Duration { return s.parser.retry }

// Close ends the stream. It is safe to call more than once, and from
// another goroutine than Next's (which then returns an error).
func (s *RecoveryEvents) Close() error {
	s.closeOnce.Do(func() {
		s.idle.Stop()
		s.cancel()
		s.body.Close()
	})
	return nil
}

// sseEvent is one dispatched event of a stream.
type sseEvent struct {
	typ  string
	data []byte
	id   string
}

// sseParser is the event stream interpretation of WHATWG HTML §9.2.6,
// fed one line at a time (without its end of line): fields "event",
// "data", "id" and "retry", comments, and dispatch at a blank line.
//
// Specification: HTML Living Standard §9.2.6 Interpreting an event stream
// (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation)
type sseParser struct {
	// started is set after the first line, whose leading byte order mark
	// is dropped.
	started bool
	typ     string
	data    []byte
	// hasData is set by a data field, even an empty one.
	hasData bool
	// lastID is the last event ID buffer; retry the reconnection time.
	lastID string
	retry  time.Duration
}

// utf8BOM is the byte order mark a stream may start with.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// line interprets one line; it returns the event a blank line dispatches
// (nil when none), or an error for an event whose data exceeds
// maxEventDataBytes.
func (p *sseParser) line(b []byte) (*sseEvent, error) {
	if !p.started {
		p.started = true
		b = bytes.TrimPrefix(b, utf8BOM)
	}
	if len(b) == 0 {
		return p.dispatch(), nil
	}
	if b[0] == ':' {
		return nil, nil // a comment: the server's keep-alive
	}
	field, value := b, []byte(nil)
	if i := bytes.IndexByte(b, ':'); i >= 0 {
		field, value = b[:i], b[i+1:]
		value = bytes.TrimPrefix(value, []byte(" "))
	}
	switch string(field) {
	case "event":
		p.typ = string(value)
	case "data":
		if len(p.data)+len(value)+1 > maxEventDataBytes {
			return nil, fmt.Errorf("an event's data is longer than %d bytes", maxEventDataBytes)
		}
		p.data = append(p.data, value...)
		p.data = append(p.data, '\n')
		p.hasData = true
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			p.lastID = string(value)
		}
	case "retry":
		if n, err := strconv.ParseUint(string(value), 10, 31); err == nil && isDigits(value) {
			p.retry = time.Duration(n) * time.Millisecond
		}
	}
	return nil, nil
}

// dispatch ends an event at a blank line: an event with no data is
// dropped, as a browser drops it; the type defaults to "message".
func (p *sseParser) dispatch() *sseEvent {
	defer func() { p.typ, p.data, p.hasData = "", nil, false }()
	if !p.hasData {
		return nil
	}
	typ := p.typ
	if typ == "" {
		typ = "message"
	}
	return &sseEvent{typ: typ, data: bytes.TrimSuffix(p.data, []byte("\n")), id: p.lastID}
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

// newEventScanner splits an event stream into lines, ended by CRLF, LF or
// a lone CR as the standard allows, each at most maxEventLineBytes.
func newEventScanner(r io.Reader) *bufio.Scanner {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxEventLineBytes)
	sc.Split(scanEventLines)
	return sc
}

// scanEventLines is a bufio.SplitFunc for event stream lines.
func scanEventLines(data []byte, atEOF bool) (advance int, token []byte, err error) {
	i := bytes.IndexAny(data, "\r\n")
	if i < 0 {
		if atEOF && len(data) > 0 {
			// The standard drops an incomplete last event; a last line
			// without its end is given, and the parser dispatches
			// nothing without a blank line after it.
			return len(data), data, nil
		}
		return 0, nil, nil
	}
	if data[i] == '\n' {
		return i + 1, data[:i], nil
	}
	// A CR: one line end with a following LF, which may not be here yet.
	if i+1 < len(data) {
		if data[i+1] == '\n' {
			return i + 2, data[:i], nil
		}
		return i + 1, data[:i], nil
	}
	if atEOF {
		return i + 1, data[:i], nil
	}
	return 0, nil, nil
}
