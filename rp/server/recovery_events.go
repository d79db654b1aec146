package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/keydesk/keydesk/rp/api"
	"github.com/keydesk/keydesk/rp/storage"
)

// keepAliveInterval is how often an idle events stream sends a comment,
// so that proxies do not close it as idle.
const keepAliveInterval = 15 * time.Second

// maxStatusWait bounds a status long poll: below the usual proxy idle
// timeouts.
const maxStatusWait = 30 * time.Second

// watchRecovery calls emit with the desktop's view of session id now and
// after every change, until emit returns false, the status is terminal,
// ctx ends or the wall-clock deadline passes. It wakes when this
// instance changes the session, and polls the store every
// RecoveryPollInterval for changes made by other instances (and for the
// expiry, which no one makes). idle, when set, is called every
// keepAliveInterval without a change.
func (s *Server) watchRecovery(r *http.Request, rs *storage.RecoverySession, deadline time.Time,
	emit func(api.RecoveryStatus) bool, idle func() bool) {
	ctx := r.Context()
	woken, stop := s.recoveryWatch.watch(rs.ID)
	defer stop()
	// rs was read before the watch began, and a change made in between
	// woke no one: without this read it would wait for the next poll
	// (an approval made just as the desktop connects).
	if next, err := s.cfg.Store.RecoverySession(ctx, rs.ID); err == nil {
		rs = next
	}
	poll := time.NewTicker(s.cfg.RecoveryPollInterval)
	defer poll.Stop()
	keepAlive := time.NewTicker(keepAliveInterval)
	defer keepAlive.Stop()
	end := time.NewTimer(time.Until(deadline))
	defer end.Stop()
	last := ""
	for {
		st := s.statusOf(r, rs)
		if st.Status != last {
			if !emit(st) || storage.RecoveryStatus(st.Status).Terminal() {
				return
			}
			last = st.Status
		}
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				return
			case <-end.C:
				return
			case <-keepAlive.C:
				if idle != nil && !idle() {
					return
				}
			case <-woken:
				waiting = false
			case <-poll.C:
				waiting = false
			}
		}
		next, err := s.cfg.Store.RecoverySession(ctx, rs.ID)
		if err != nil {
			if !errors.Is(err, storage.ErrNotFound) && ctx.Err() == nil {
				s.cfg.Logger.ErrorContext(ctx, "recovery events: read session", "err", err)
			}
			return
		}
		rs = next
	}
}

// streamDeadline is the wall-clock end of a desktop's watch: past any
// session's expiry, plus a margin, whatever the server's clock says.
func (s *Server) streamDeadline() time.Time {
	return time.Now().Add(s.cfg.RecoveryTTL + s.cfg.RecoveryRedeemWindow + time.Minute)
}

// recoveryEvents is the desktop's server-sent events stream of its
// handoff (text/event-stream, WHATWG HTML §9.2): an event "status" with
// an api.RecoveryStatus as data, at once and on every change, until the
// session is refused, redeemed or expired. An approval made on this
// instance arrives at once, one made on another within
// RecoveryPollInterval.
func (s *Server) recoveryEvents(w http.ResponseWriter, r *http.Request, _ *caller) error {
	rs, err := s.desktopSession(r)
	if err != nil {
		return err
	}
	deadline := s.streamDeadline()
	rc := http.NewResponseController(w)
	// The server's WriteTimeout is for ordinary answers: this one lasts
	// as long as the session may.
	_ = rc.SetWriteDeadline(deadline.Add(10 * time.Second))
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	// retry: a browser's EventSource reconnects after a second.
	if _, err := fmt.Fprint(w, "retry: 1000\n\n"); err != nil {
		return nil
	}
	_ = rc.Flush()
	seq := 0
	s.watchRecovery(r, rs, deadline, func(st api.RecoveryStatus) bool {
		data, err := json.Marshal(st)
		if err != nil {
			return false
		}
		seq++
		if _, err := fmt.Fprintf(w, "id: %d\nevent: status\ndata: %s\n\n", seq, data); err != nil {
			return false
		}
		return rc.Flush() == nil
	}, func() bool {
		if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
			return false
		}
		return rc.Flush() == nil
	})
	return nil
}

// recoveryStatusPoll is the events stream's fallback for clients that
// cannot read a stream: GET .../status?since=STATUS&wait=SECONDS answers
// once the status differs from since, or after wait seconds (at most 30;
// 0, the default, answers at once).
func (s *Server) recoveryStatusPoll(w http.ResponseWriter, r *http.Request, _ *caller) error {
	rs, err := s.desktopSession(r)
	if err != nil {
		return err
	}
	wait := time.Duration(0)
	if v := r.URL.Query().Get("wait"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > int(maxStatusWait/time.Second) {
			return problem(http.StatusBadRequest, "bad_query", "wait is a number of seconds from 0 to %d.", int(maxStatusWait/time.Second))
		}
		wait = time.Duration(n) * time.Second
	}
	since := r.URL.Query().Get("since")
	var last api.RecoveryStatus
	s.watchRecovery(r, rs, time.Now().Add(wait), func(st api.RecoveryStatus) bool {
		last = st
		return wait > 0 && st.Status == since
	}, nil)
	if last.Status == "" {
		// The client went away before the first read.
		last = s.statusOf(r, rs)
	}
	writeJSON(w, http.StatusOK, last)
	return nil
}
