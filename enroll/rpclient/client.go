// Package rpclient is the desktop app's client of the relying-party API
// (package rp/api, served by rp/server or any identity service that
// implements it): typed calls for signing in, redeeming enrollment codes,
// registering, listing, renaming and revoking keys, account recovery, and
// the helpdesk's and admins' work on accounts, with the API's
// problems turned into typed errors, bounded answers, and retries only
// where the API makes them safe.
//
// Every call goes through one request path (Client.do), the helpdesk's
// and the admins' (helpdesk.go, admin.go) included. The one exception is
// a recovery handoff's events stream (RecoveryEvents), an answer that
// lasts minutes and is read as it comes.
package rpclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/keydesk/keydesk/enroll/webauthn"
)

// Defaults of Config.
const (
	// DefaultTimeout bounds a whole call, retries and waits included: a
	// person is waiting in front of a dialog.
	DefaultTimeout = 30 * time.Second
	// DefaultMaxAttempts is how many times a call that may be retried is
	// sent at most.
	DefaultMaxAttempts = 3
	// DefaultRetryBackoff is the wait before the first retry; each later
	// wait is three times the one before (200 ms, 600 ms): enough to ride
	// out a restarting instance or a dropped connection, short enough
	// that a dead server is reported within a second.
	DefaultRetryBackoff = 200 * time.Millisecond
	// DefaultMaxResponseBytes bounds an answer. The largest user-facing
	// one, a key list, is a few kilobytes; a bound keeps a broken or
	// hostile server from filling memory.
	DefaultMaxResponseBytes = 1 << 20
	// DefaultUserAgent names the client to the server's logs.
	DefaultUserAgent = "Keydesk"
)

// maxBackoff caps one wait between attempts, whatever the configuration.
const maxBackoff = 5 * time.Second

// Config configures a Client. Only BaseURL is required.
type Config struct {
	// BaseURL is the API's base, such as "https://login.example.com" or
	// "http://127.0.0.1:8787", optionally with a path prefix when the API
	// is served under one. It must be https, or http only when the host
	// is this computer (localhost, *.localhost, 127.0.0.0/8, ::1): the
	// rule a browser applies to a WebAuthn origin, for the same reason,
	// since sessions travel in every request.
	BaseURL string
	// HTTPClient sends the requests; nil uses a client of its own over a
	// clone of http.DefaultTransport (proxy from the environment, TLS 1.2
	// or later). A custom one serves tests (RootCAs for a test
	// certificate authority) and enterprise proxies; New refuses one that
	// skips certificate verification. Redirects are never followed: the
	// API answers without them, and following one could carry the
	// session token or a signed credential elsewhere.
	HTTPClient *http.Client
	// Token is the bearer token of an existing session, "" for none.
	Token string
	// UserAgent is sent as User-Agent; DefaultUserAgent when empty.
	UserAgent string
	// Timeout bounds each call, all its attempts and waits included;
	// DefaultTimeout when zero or negative.
	Timeout time.Duration
	// MaxAttempts bounds the attempts of a call that may be retried;
	// DefaultMaxAttempts when zero or negative, 1 to never retry.
	MaxAttempts int
	// RetryBackoff is the wait before the first retry;
	// DefaultRetryBackoff when zero or negative.
	RetryBackoff time.Duration
	// MaxResponseBytes bounds an answer's body;
	// DefaultMaxResponseBytes when zero or negative.
	MaxResponseBytes int64
}

// Client calls the RP API for one user. It is safe for concurrent use.
// Signing in or redeeming a code makes it use the new session, and
// signing out forgets it; Token and SetToken let the app keep a session
// between runs.
type Client struct {
	base      string // scheme://host[:port][/prefix], no trailing slash
	hc        *http.Client
	userAgent string
	timeout   time.Duration
	attempts  int
	backoff   time.Duration
	maxBody   int64

	mu    sync.Mutex
	token string // guarded by mu
}

// New checks cfg and returns a Client. It fails with ErrBadURL,
// ErrInsecureConfig or ErrBadArgument (a token that cannot be a bearer
// token); its errors never repeat a password or token found in cfg.
func New(cfg Config) (*Client, error) {
	base, err := parseBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	hc, err := httpClient(cfg.HTTPClient)
	if err != nil {
		return nil, err
	}
	if err := checkToken(cfg.Token); err != nil {
		return nil, err
	}
	c := &Client{
		base: base, hc: hc, userAgent: cfg.UserAgent, timeout: cfg.Timeout,
		attempts: cfg.MaxAttempts, backoff: cfg.RetryBackoff, maxBody: cfg.MaxResponseBytes,
		token: cfg.Token,
	}
	if c.userAgent == "" {
		c.userAgent = DefaultUserAgent
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.attempts <= 0 {
		c.attempts = DefaultMaxAttempts
	}
	if c.backoff <= 0 {
		c.backoff = DefaultRetryBackoff
	}
	if c.maxBody <= 0 {
		c.maxBody = DefaultMaxResponseBytes
	}
	return c, nil
}

// BaseURL returns the API base the client calls, as New normalized it.
func (c *Client) BaseURL() string { return c.base }

// Token returns the bearer token of the client's session, "" when signed
// out, so that the app can keep it (in the OS keyring, never in a log).
func (c *Client) Token() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token
}

// SetToken makes the client use the session of token ("" for none), such
// as one kept from an earlier run. It fails with ErrBadArgument for a
// value that cannot be a bearer token.
func (c *Client) SetToken(token string) error {
	if err := checkToken(token); err != nil {
		return err
	}
	c.mu.Lock()
	c.token = token
	c.mu.Unlock()
	return nil
}

// WithToken returns a client like c (same server, HTTP client and limits)
// for the session of token, such as an older session to end after a new
// sign-in replaced it.
func (c *Client) WithToken(token string) (*Client, error) {
	if err := checkToken(token); err != nil {
		return nil, err
	}
	return &Client{base: c.base, hc: c.hc, userAgent: c.userAgent, timeout: c.timeout,
		attempts: c.attempts, backoff: c.backoff, maxBody: c.maxBody, token: token}, nil
}

// maxTokenBytes is the longest token rp/server accepts.
const maxTokenBytes = 256

// checkToken refuses a token that cannot travel in an Authorization
// header (RFC 6750 §2.1 b64token, loosely: visible ASCII), without
// repeating it.
func checkToken(t string) error {
	if len(t) > maxTokenBytes {
		return fmt.Errorf("rpclient: %w: the session token is longer than %d bytes", ErrBadArgument, maxTokenBytes)
	}
	for i := 0; i < len(t); i++ {
		if t[i] <= ' ' || t[i] >= 0x7f {
			return fmt.Errorf("rpclient: %w: the session token has characters a bearer token cannot have", ErrBadArgument)
		}
	}
	return nil
}

// maxBaseURLLength bounds a configured base URL.
const maxBaseURLLength = 2048

// parseBaseURL checks a base URL and returns it without a trailing slash.
// The scheme, host and port follow webauthn.ParseOrigin, so that the API
// and the WebAuthn origin obey one rule for plain http.
func parseBaseURL(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("rpclient: %w: no server address", ErrBadURL)
	}
	if len(s) > maxBaseURLLength {
		return "", fmt.Errorf("rpclient: %w: it is longer than %d bytes", ErrBadURL, maxBaseURLLength)
	}
	u, err := url.Parse(s)
	if err != nil {
		// url.Parse's error repeats the input, which may hold a password.
		return "", fmt.Errorf("rpclient: %w: it cannot be read as a web address", ErrBadURL)
	}
	switch {
	case u.User != nil:
		return "", fmt.Errorf("rpclient: %w: it contains a user name or password; the API signs in with security keys", ErrBadURL)
	case u.Opaque != "" || u.Host == "":
		return "", fmt.Errorf("rpclient: %w: it has no host; write it as https://host", ErrBadURL)
	case strings.ContainsAny(s, "?#"):
		return "", fmt.Errorf("rpclient: %w: it has a query or fragment", ErrBadURL)
	}
	origin := u.Scheme + "://" + u.Host
	if _, err := webauthn.ParseOrigin(origin); errors.Is(err, webauthn.ErrInsecureOrigin) {
		return "", fmt.Errorf("rpclient: %w: %s uses plain http on a host other than this computer; use https", ErrInsecureConfig, origin)
	} else if err != nil {
		return "", fmt.Errorf("rpclient: %w: %w", ErrBadURL, err)
	}
	return origin + strings.TrimRight(u.EscapedPath(), "/"), nil
}

// httpClient returns the client requests go through: a copy of custom
// (so that refusing redirects does not change the caller's client) or a
// new one.
func httpClient(custom *http.Client) (*http.Client, error) {
	var hc http.Client
	if custom != nil {
		hc = *custom
		t := hc.Transport
		if t == nil {
			t = http.DefaultTransport
		}
		if tr, ok := t.(*http.Transport); ok && tr.TLSClientConfig != nil && tr.TLSClientConfig.InsecureSkipVerify {
			return nil, fmt.Errorf("rpclient: %w: the HTTP client skips TLS certificate verification; add the server's authority to RootCAs instead", ErrInsecureConfig)
		}
	} else {
		var tr *http.Transport
		if dt, ok := http.DefaultTransport.(*http.Transport); ok {
			tr = dt.Clone()
		} else {
			tr = &http.Transport{Proxy: http.ProxyFromEnvironment, TLSHandshakeTimeout: 10 * time.Second}
		}
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		hc.Transport = tr
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &hc, nil
}

// retry is which failures of a call may be sent again.
type retry int

const (
	// retryUnsent retries only when the request certainly never reached
	// the server (the connection could not be made): for calls that
	// change state without the server recognising a repeat, such as
	// redeeming an enrollment code, which a repeat would spend again.
	retryUnsent retry = iota
	// retrySafe also retries after a connection lost mid-exchange and
	// after 502, 503 and 504: for calls that a repeat cannot harm. Reads
	// are; begins are (a repeat leaves an unused ceremony, which expires);
	// finishes are, since the server answers a byte-identical repeat from
	// the same address with its first answer; renaming to the same name
	// and revoking a revoked key change nothing.
	retrySafe
)

// call is one API request as the methods describe it.
type call struct {
	op     string // for errors: "finish sign-in"
	method string
	path   string // under the base URL, escaped
	body   []byte // JSON, nil for none; sent identically by every attempt
	auth   bool   // send the session's bearer token
	// bearer, when not "", is sent as the bearer token instead of the
	// session's: a recovery handoff's desktop token.
	bearer string
	retry  retry
	// wait lengthens the call's timeout: a long poll's wait, which the
	// server spends on purpose before answering.
	wait time.Duration
	// header, when set, reads the success answer's headers.
	header func(http.Header)
	// want is the success status; out, when not nil, receives its JSON
	// body, which check then validates.
	want  int
	out   any
	check func() error
	// raw, when not nil, receives the success answer's body as it came,
	// in place of out: an answer that is not one JSON value (the audit
	// log's JSONL). Its media type must be rawType, which Accept asks
	// for.
	raw     *[]byte
	rawType string
	// maxBody, when above 0, bounds this call's answer in place of
	// Config.MaxResponseBytes: the audit export is far larger than any
	// other answer.
	maxBody int64
}

// do runs k: it sends the request, retrying as k.retry allows within the
// call's timeout, and decodes the answer into k.out. Its errors are
// *Error.
func (c *Client) do(ctx context.Context, k call) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout+k.wait)
	defer cancel()
	// The token is read once, so that every attempt is the same request.
	var token string
	if k.auth {
		token = c.Token()
	}
	if k.bearer != "" {
		token = k.bearer
	}
	for attempt := 1; ; attempt++ {
		e, retryable := c.attempt(ctx, k, token)
		if e == nil {
			return nil
		}
		e.Attempts = attempt
		if ctx.Err() != nil {
			return ctxError(ctx, e)
		}
		if !retryable || attempt >= c.attempts {
			return e
		}
		wait := c.backoffFor(attempt)
		if e.RetryAfter > wait {
			// The server asked for a longer pause than a quick retry:
			// leave the decision to the caller.
			return e
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctxError(ctx, e)
		case <-t.C:
		}
	}
}

// backoffFor is the wait after the attempt-th attempt: the backoff, times
// three for each attempt before.
func (c *Client) backoffFor(attempt int) time.Duration {
	d := c.backoff
	for i := 1; i < attempt && d < maxBackoff; i++ {
		d *= 3
	}
	return min(d, maxBackoff)
}

// ctxError is the error of a call whose context ended: a cancellation
// (which matches context.Canceled and no sentinel of this package: the
// user gave up, nothing failed) or a timeout (ErrNetwork, matching
// context.DeadlineExceeded too), keeping the last failure for logs.
func ctxError(ctx context.Context, last *Error) *Error {
	e := &Error{Op: last.Op, Attempts: last.Attempts, Err: ctx.Err()}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		e.kind = ErrNetwork
		if last.Err != nil && !errors.Is(last.Err, context.DeadlineExceeded) {
			e.Err = fmt.Errorf("no answer in time: %w (last failure: %v)", ctx.Err(), last.Err)
		} else if last.Status != 0 {
			e.Err = fmt.Errorf("no answer in time: %w (last answer: HTTP %d)", ctx.Err(), last.Status)
		}
	}
	return e
}

// attempt sends k once. It returns nil on success, else the error and
// whether k may be sent again.
func (c *Client) attempt(ctx context.Context, k call, token string) (*Error, bool) {
	var body io.Reader
	if k.body != nil {
		body = bytes.NewReader(k.body)
	}
	req, err := http.NewRequestWithContext(ctx, k.method, c.base+k.path, body)
	if err != nil {
		return &Error{Op: k.op, Err: err, kind: ErrBadArgument}, false
	}
	accept := "application/json"
	if k.rawType != "" {
		accept = k.rawType + ", application/json" // refusals are JSON problems
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("User-Agent", c.userAgent)
	if k.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return transportError(k, err)
	}
	defer resp.Body.Close()
	limit := c.maxBody
	if k.maxBody > 0 {
		limit = k.maxBody
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		// The answer was cut: the server may have acted on the request.
		e, _ := transportError(k, err)
		return e, k.retry == retrySafe
	}
	tooBig := int64(len(raw)) > limit
	switch {
	case resp.StatusCode == k.want && !tooBig:
		if err := c.decode(resp, raw, k); err != nil {
			return &Error{Op: k.op, Status: resp.StatusCode, Err: err, kind: ErrBadResponse}, false
		}
		if k.header != nil {
			k.header(resp.Header)
		}
		return nil, true
	case resp.StatusCode == k.want:
		return &Error{Op: k.op, Status: resp.StatusCode, kind: ErrBadResponse,
			Err: fmt.Errorf("the answer is larger than %d bytes", limit)}, false
	case resp.StatusCode < 400:
		// A redirect (not followed: see Config.HTTPClient) or another
		// success than the API's means the address is not the API's.
		return &Error{Op: k.op, Status: resp.StatusCode, kind: ErrBadResponse,
			Err: fmt.Errorf("unexpected HTTP %d %s; check the server address", resp.StatusCode, http.StatusText(resp.StatusCode))}, false
	}
	e := problemError(k.op, resp, raw, tooBig)
	switch resp.StatusCode {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return e, k.retry == retrySafe
	}
	return e, false
}

// transportError is a failed exchange, and whether k may be retried.
func transportError(k call, err error) (*Error, bool) {
	if isCertificateError(err) {
		return &Error{Op: k.op, Err: err, kind: ErrCertificate}, false
	}
	return &Error{Op: k.op, Err: err, kind: ErrNetwork}, k.retry == retrySafe || notSent(err)
}

// notSent reports whether err is a failure to connect (including to
// resolve the host), after which the server cannot have seen the request.
func notSent(err error) bool {
	var (
		op  *net.OpError
		dns *net.DNSError
	)
	return (errors.As(err, &op) && op.Op == "dial") || errors.As(err, &dns)
}

// problemError turns an error answer into an *Error, reading the API's
// problem from the body when it is one. A body that is not (a proxy's
// HTML page) leaves Code and Message empty: the status still says what
// kind of failure it was.
func problemError(op string, resp *http.Response, raw []byte, tooBig bool) *Error {
	e := &Error{Op: op, Status: resp.StatusCode, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	if !tooBig && isJSON(resp.Header.Get("Content-Type")) {
		var p struct {
			Error   string `json:"error"`
			Message string `json:"message"`
		}
		if json.Unmarshal(raw, &p) == nil {
			e.Code, e.Message = cleanCode(p.Error), cleanMessage(p.Message)
		}
	}
	e.kind = codeSentinel(e.Code)
	return e
}

// isJSON reports whether a Content-Type is JSON.
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// decode reads a successful answer into k.out: JSON by its Content-Type,
// one value and nothing after it, members of the right types, and what
// k.check requires present. Members the client does not know are
// accepted: the OpenAPI document leaves the answers' schemas open (only
// requests are closed), so a newer server may add some. An answer for
// k.raw is kept as it came, once its media type is k.rawType.
func (c *Client) decode(resp *http.Response, raw []byte, k call) error {
	if k.raw != nil {
		if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != k.rawType {
			if mt == "" {
				mt = "no content type"
			}
			return fmt.Errorf("the answer is %s, not %s; check the server address", printable(mt), k.rawType)
		}
		*k.raw = raw
		return nil
	}
	if k.out == nil {
		if len(bytes.TrimSpace(raw)) != 0 {
			return errors.New("the answer has a body where the API sends none")
		}
		return nil
	}
	if ct := resp.Header.Get("Content-Type"); !isJSON(ct) {
		mt, _, _ := mime.ParseMediaType(ct)
		if mt == "" {
			mt = "no content type"
		}
		return fmt.Errorf("the answer is %s, not JSON; check the server address", printable(mt))
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(k.out); err != nil {
		return fmt.Errorf("the answer is not the JSON the API sends: %w", jsonReason(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("the answer has data after its JSON value")
	}
	if k.check != nil {
		return k.check()
	}
	return nil
}

// jsonReason keeps what a JSON decoding error says about the shape of the
// answer and drops nothing secret: encoding/json names fields, types and
// offsets, never values.
func jsonReason(err error) error {
	if errors.Is(err, io.EOF) {
		return errors.New("it is empty")
	}
	return err
}

// printable bounds a value from the server that goes into an error.
func printable(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return fmt.Sprintf("%q", s)
}

// marshal encodes a request body. The API's request types always encode;
// the error is kept for a type that one day might not.
func marshal(op string, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, &Error{Op: op, Err: err, kind: ErrBadArgument}
	}
	return b, nil
}
