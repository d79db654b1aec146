package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/keydesk/keydesk/rp/api"
	"github.com/keydesk/keydesk/rp/httpstatus"
	"github.com/keydesk/keydesk/rp/ratelimit"
	"github.com/keydesk/keydesk/rp/storage"
)

// caller is who sent a request: nil for a public route.
type caller struct {
	session *storage.Session
	user    *storage.User
}

// handler is a route's function. Returning an *httpError answers with it;
// any other error is a 500 whose cause is logged, never sent.
type handler func(w http.ResponseWriter, r *http.Request, c *caller) error

// httpError is an answer other than success.
type httpError struct {
	status  int
	code    string // api.Problem.Error
	message string // for people
	// retryAfter is sent as Retry-After when set.
	retryAfter time.Duration
}

func (e *httpError) Error() string { return fmt.Sprintf("%d %s: %s", e.status, e.code, e.message) }

func problem(status int, code, format string, args ...any) *httpError {
	return &httpError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

// The answers several routes share.
var (
	errUnauthenticated = problem(http.StatusUnauthorized, "unauthenticated", "Sign in first: this needs a session token (Authorization: Bearer ...).")
	errForbidden       = problem(http.StatusForbidden, "forbidden", "Your account may not do this.")
	errUserNotFound    = problem(http.StatusNotFound, "user_not_found", "No such user.")
	errKeyNotFound     = problem(http.StatusNotFound, "key_not_found", "No such key.")
)

// handle registers h on pattern behind the access check.
func (s *Server) handle(pattern string, a access, h handler) {
	s.access[pattern] = a
	s.mux.HandleFunc(pattern, func(rw http.ResponseWriter, r *http.Request) {
		start := time.Now()
		w := httpstatus.Wrap(rw)
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		c, err := s.authorize(r, a)
		if err == nil {
			err = h(w, r, c)
		}
		if err != nil {
			s.fail(w, r, err)
		}
		// The route, never the path or query (which could carry an
		// identifier), and never a header.
		s.cfg.Logger.LogAttrs(r.Context(), slog.LevelInfo, "request", slog.String("route", pattern),
			slog.Int("status", w.Status()), slog.Duration("took", time.Since(start)),
			slog.String("client", clientAddr(r, s.cfg.TrustedProxies)))
	})
}

// authorize finds the request's session and checks it against a.
func (s *Server) authorize(r *http.Request, a access) (*caller, error) {
	if a == public {
		return nil, nil
	}
	token, ok := bearer(r)
	if !ok {
		return nil, errUnauthenticated
	}
	sess, err := s.cfg.Store.Session(r.Context(), hashToken(token), s.cfg.Now())
	if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrExpired) {
		return nil, problem(http.StatusUnauthorized, "session_expired", "Your session has ended: sign in again.")
	}
	if err != nil {
		return nil, err
	}
	u, err := s.cfg.Store.UserByID(r.Context(), sess.UserID)
	if err != nil {
		return nil, err
	}
	if u.Disabled {
		return nil, problem(http.StatusForbidden, "user_disabled", "This account is disabled: ask your helpdesk.")
	}
	c := &caller{session: sess, user: u}
	full := sess.Scope == storage.ScopeFull
	switch a {
	case anySession:
		return c, nil
	case registration:
		if full || sess.Scope == storage.ScopeRegister || sess.Scope == storage.ScopeRecovery {
			return c, nil
		}
	case ownKeys:
		if full || sess.Scope == storage.ScopeRecovery {
			return c, nil
		}
	case userRole:
		if full {
			return c, nil
		}
	case helpdeskRole:
		if full && (u.HasRole(storage.RoleHelpdesk) || u.HasRole(storage.RoleAdmin)) {
			return c, nil
		}
	case adminRole:
		if full && u.HasRole(storage.RoleAdmin) {
			return c, nil
		}
	}
	return nil, errForbidden
}

func clientAddr(r *http.Request, trusted []netip.Prefix) string {
	if ip := ratelimit.ClientIP(r, trusted); ip.IsValid() {
		return ip.String()
	}
	return ""
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" || len(token) > 256 {
		return "", false
	}
	return token, true
}

// hashToken is what the store keeps of a bearer token.
func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// fail answers err.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	if !errors.As(err, &he) {
		s.cfg.Logger.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		he = problem(http.StatusInternalServerError, "internal", "The server failed; try again later.")
	}
	if he.retryAfter > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(int((he.retryAfter+time.Second-1)/time.Second)))
	}
	writeJSON(w, he.status, api.Problem{Error: he.code, Message: he.message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// readJSON reads a body of at most MaxBodyBytes into v, strictly: unknown
// fields, trailing data and wrong types are refused. It returns the raw
// body, for the idempotency hash of a finish.
func (s *Server) readJSON(w http.ResponseWriter, r *http.Request, v any) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return nil, problem(http.StatusUnsupportedMediaType, "bad_content_type", "Send application/json.")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, problem(http.StatusRequestEntityTooLarge, "body_too_large", "The request body is larger than %d bytes.", s.cfg.MaxBodyBytes)
	}
	if err != nil {
		return nil, problem(http.StatusBadRequest, "bad_body", "The request body could not be read.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return nil, problem(http.StatusBadRequest, "bad_json", "The request body is not the JSON this endpoint takes: %s.", jsonReason(err))
	}
	if dec.More() {
		return nil, problem(http.StatusBadRequest, "bad_json", "The request body has data after its JSON value.")
	}
	return body, nil
}

// jsonReason says what was wrong with a body without echoing its content.
func jsonReason(err error) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		return fmt.Sprintf("field %q has the wrong type", typeErr.Field)
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("syntax error at byte %d", syntaxErr.Offset)
	case errors.Is(err, io.EOF):
		return "it is empty"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return strings.TrimPrefix(err.Error(), "json: ")
	}
	return "malformed"
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func unb64(s string) ([]byte, bool) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	return b, err == nil && len(b) > 0 && len(b) <= 1023
}
