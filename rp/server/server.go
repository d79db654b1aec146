// Package server is the reference relying-party service: the HTTP API of
// package api over a storage.Store, with go-webauthn for every WebAuthn
// verification. Any number of instances may serve one database: ceremony
// state, sessions and grants live in the store, never in memory.
package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/go-webauthn/webauthn/metadata"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/keydesk/keydesk/rp/api"
	"github.com/keydesk/keydesk/rp/metrics"
	"github.com/keydesk/keydesk/rp/ratelimit"
	"github.com/keydesk/keydesk/rp/storage"
)

// Config configures a Server. New checks it and fills the defaults.
type Config struct {
	// RPID is the WebAuthn RP ID, e.g. "example.com" or "localhost".
	RPID string
	// RPDisplayName is shown by authenticators; RPID by default.
	RPDisplayName string
	// Origins are the web origins ceremonies may come from, e.g.
	// "https://login.example.com". Keydesk sends the origin of its
	// profile, which must be listed.
	Origins []string
	// Store holds all state.
	Store storage.Store
	// Secret keys the hashes of enrollment codes and derives session
	// tokens: at least 32 random bytes, the same on every instance, and
	// kept out of the database.
	Secret []byte
	// Logger receives structured logs; slog.Default() when nil. Nothing
	// secret is ever logged.
	Logger *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time

	// SessionTTL is how long a session from a sign-in lasts (1 h).
	SessionTTL time.Duration
	// GrantSessionTTL is how long a session from a grant lasts (15 min).
	GrantSessionTTL time.Duration
	// CeremonyTTL is how long a begun ceremony may be finished (5 min).
	CeremonyTTL time.Duration
	// StepUpWindow is how recent a sign-in must be to revoke a key (5 min).
	StepUpWindow time.Duration
	// MaxBodyBytes bounds request bodies (64 KiB).
	MaxBodyBytes int64
	// PolicyTTL is how long an instance uses the policy it read before
	// reading it again (1 s): a change made on another instance applies
	// here within it, on this one at once.
	PolicyTTL time.Duration

	// MDS is the FIDO Metadata Service BLOB the "verified" attestation
	// policy checks registrations against (rp/mds.Load reads it from a
	// local file); nil refuses that policy.
	MDS metadata.Provider
	// MDSNextUpdate is the BLOB's nextUpdate, which /readyz reports, so
	// that monitoring sees a BLOB that is due to be refreshed.
	MDSNextUpdate time.Time

	// Metrics records the service's SLIs; nil records nothing.
	Metrics *metrics.Metrics
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is
	// believed, for rate limits and the audit log's addresses.
	TrustedProxies []netip.Prefix
	// IPRate and IPBurst limit each client address's requests (20 a
	// second, bursts of 60). AccountRate and AccountBurst limit
	// enrollment-code attempts per user name (one every 6 seconds, bursts
	// of 10), which is what makes guessing a code hopeless; that budget is
	// kept in the database, one for all instances. Sign-ins are
	// not limited per account: an assertion cannot be guessed, and a
	// limit anyone can spend by naming a user would lock that user out.
	IPRate       float64
	IPBurst      int
	AccountRate  float64
	AccountBurst int

	// RecoveryTTL is how long a QR handoff may be approved from the
	// phone (3 min): long enough to find the phone, short enough that a
	// QR code photographed over a shoulder is soon worthless.
	RecoveryTTL time.Duration
	// RecoveryRedeemWindow is how long the desktop has, from the
	// approval, to redeem it (1 min); it is watching, so it takes
	// milliseconds.
	RecoveryRedeemWindow time.Duration
	// RecoverySessionTTL is how long a recovery-scoped session lasts
	// (10 min): enough to enroll a key and revoke the lost ones.
	RecoverySessionTTL time.Duration
	// RecoveryPollInterval is how often a desktop's events stream reads
	// its session from the database (150 ms), so that an approval made on
	// another instance reaches it within that; one made on this instance
	// reaches it at once.
	RecoveryPollInterval time.Duration
	// RecoveryRate and RecoveryBurst limit the handoffs started per
	// account name and per client address (one every 30 s, bursts of 5),
	// in the database like AccountRate. Answering a handoff (describe,
	// approve) and redeeming a recovery code spend the AccountRate budget
	// of the account and of the address, which is what makes guessing a
	// typed code or a recovery code hopeless.
	RecoveryRate  float64
	RecoveryBurst int
	// RecoveryChecklist is what a helpdesk member must check, and list,
	// before issuing a recovery grant: item IDs of lower-case letters,
	// digits and dashes. By default photo-id, callback-known-number and
	// manager-confirmation.
	RecoveryChecklist []string
	// Notify is told of every recovery step of a real account (requested,
	// approved, refused, redeemed, expired, a recovery code used, codes
	// generated, a helpdesk grant issued or approved), so that the RP can
	// tell the user by e-mail or SMS: a recovery they did not start is how
	// a takeover shows. It runs on its own goroutine after the change is
	// committed, so a slow mailer delays nothing and its timing tells a
	// caller nothing. A Notification never holds a secret. nil logs each
	// one (Logger, level Info).
	Notify func(ctx context.Context, n Notification)
}

// Errors New returns for a bad Config.
var (
	ErrNoStore     = errors.New("server: no store")
	ErrShortSecret = errors.New("server: secret shorter than 32 bytes")
	ErrNoOrigin    = errors.New("server: no origin")
	// ErrBadChecklist is a RecoveryChecklist that is empty, too long, or
	// holds a repeated or malformed item.
	ErrBadChecklist = errors.New("server: recovery checklist: want 1 to 20 distinct item IDs of lower-case letters, digits and dashes")
)

func (c *Config) validate() error {
	if c.Store == nil {
		return ErrNoStore
	}
	if len(c.Secret) < 32 {
		return ErrShortSecret
	}
	if c.RPID == "" {
		return errors.New("server: no RP ID")
	}
	if len(c.Origins) == 0 {
		return ErrNoOrigin
	}
	for _, o := range c.Origins {
		u, err := url.Parse(o)
		if err != nil || u.Host == "" || u.Path != "" || (u.Scheme != "https" && u.Scheme != "http") {
			return fmt.Errorf("server: origin %q: want scheme://host[:port]", o)
		}
	}
	if c.RPDisplayName == "" {
		c.RPDisplayName = c.RPID
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	setDefault(&c.SessionTTL, time.Hour)
	setDefault(&c.GrantSessionTTL, 15*time.Minute)
	setDefault(&c.CeremonyTTL, 5*time.Minute)
	setDefault(&c.StepUpWindow, 5*time.Minute)
	setDefault(&c.PolicyTTL, time.Second)
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 64 << 10
	}
	if c.IPRate <= 0 {
		c.IPRate, c.IPBurst = 20, 60
	}
	if c.AccountRate <= 0 {
		c.AccountRate, c.AccountBurst = 1.0/6, 10
	}
	setDefault(&c.RecoveryTTL, 3*time.Minute)
	setDefault(&c.RecoveryRedeemWindow, time.Minute)
	setDefault(&c.RecoverySessionTTL, 10*time.Minute)
	setDefault(&c.RecoveryPollInterval, 150*time.Millisecond)
	if c.RecoveryRate <= 0 {
		c.RecoveryRate, c.RecoveryBurst = 1.0/30, 5
	}
	if c.RecoveryChecklist == nil {
		c.RecoveryChecklist = []string{"photo-id", "callback-known-number", "manager-confirmation"}
	}
	if err := checkChecklist(c.RecoveryChecklist); err != nil {
		return err
	}
	if c.Notify == nil {
		c.Notify = logNotification(c.Logger)
	}
	return nil
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

// Server serves the RP API.
type Server struct {
	cfg Config
	wa  *webauthn.WebAuthn
	// mds verifies registrations under the "verified" policy (go-webauthn
	// with the FIDO metadata) and knows the BLOB's nextUpdate; SetMDS
	// swaps it for a newer BLOB while requests run. nil: no metadata.
	mds atomic.Pointer[mdsState]
	// catalog is GET /v1/authenticators's answer, built at the first
	// request after the metadata changed.
	catalog atomic.Pointer[catalog]
	mux     *http.ServeMux
	// perIP limits every request (buckets in memory); perAccount
	// attempts at codes and secrets, per account and per address, and
	// perRecovery the handoffs started (their buckets are in the
	// database).
	perIP, perAccount, perRecovery *ratelimit.Limiter
	pol                            policyCache
	// recoveryWatch wakes this instance's events streams when this
	// instance changes a recovery session.
	recoveryWatch *watchers
	// access records each route's access, for the authorization tests.
	access map[string]access
}

// New checks cfg and returns a Server.
func New(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	wa, err := webauthn.New(waConfig(&cfg, nil))
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s := &Server{cfg: cfg, wa: wa, mux: http.NewServeMux(), access: map[string]access{}, recoveryWatch: newWatchers()}
	if cfg.MDS != nil {
		if err := s.SetMDS(cfg.MDS, cfg.MDSNextUpdate); err != nil {
			return nil, err
		}
	}
	limiter := func(rate float64, burst int, name metrics.Limiter) (*ratelimit.Limiter, error) {
		return ratelimit.New(ratelimit.Config{Rate: rate, Burst: burst, Now: cfg.Now,
			OnRefuse: func(string) { cfg.Metrics.RateLimited(name) }})
	}
	if s.perIP, err = limiter(cfg.IPRate, cfg.IPBurst, metrics.LimiterIP); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if s.perAccount, err = limiter(cfg.AccountRate, cfg.AccountBurst, metrics.LimiterAccount); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if s.perRecovery, err = limiter(cfg.RecoveryRate, cfg.RecoveryBurst, metrics.LimiterRecovery); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s.routes()
	return s, nil
}

// Handler returns the HTTP handler of the API: CORS for the configured
// origins only, rate limited per client address, and timed per route when
// Config.Metrics is set.
func (s *Server) Handler() http.Handler {
	h := ratelimit.Middleware(s.perIP, ratelimit.IPKey(s.cfg.TrustedProxies), s.mux)
	if s.cfg.Metrics != nil {
		h = s.cfg.Metrics.InstrumentHandler(h)
	}
	return s.cors(h)
}

// cors lets the configured origins, and no other, call the API from a
// browser (the recovery page, a web client): a preflight from one is
// answered here, and its requests carry Access-Control-Allow-Origin.
// Others get no CORS headers, so browsers keep their answers from them.
func (s *Server) cors(next http.Handler) http.Handler {
	allowed := map[string]bool{}
	for _, o := range s.cfg.Origins {
		allowed[o] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || !allowed[origin] {
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				w.WriteHeader(http.StatusForbidden)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Sweep deletes ceremonies, sessions and grants past their expiry.
func (s *Server) Sweep(ctx context.Context) (int, error) {
	var n int
	err := s.cfg.Store.Tx(ctx, func(tx storage.Tx) error {
		var err error
		n, err = tx.DeleteExpired(s.cfg.Now())
		return err
	})
	return n, err
}

// RunJanitor sweeps every interval until ctx ends; serve runs it so that
// expired rows do not pile up. Several instances sweeping is harmless.
func (s *Server) RunJanitor(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := s.Sweep(ctx); err != nil {
			s.cfg.Logger.WarnContext(ctx, "sweep expired rows", "err", err)
		} else if n > 0 {
			s.cfg.Logger.InfoContext(ctx, "swept expired rows", "rows", n)
		}
	}
}

// limitAccount counts an enrollment-code attempt on the account name: a
// 429 with Retry-After once its budget is spent. The bucket is kept in
// the database, so that instances sharing it share the budget: N
// instances must not allow N times the guesses. (The per-address limit
// stays per instance: it guards the instance, not a secret.)
func (s *Server) limitAccount(ctx context.Context, name string) error {
	return s.limit(ctx, s.perAccount, "Too many attempts for this account: wait and try again.", limitKey("user", name))
}

// limitKey is the rate limit key of value (a user name, an address)
// under prefix. Storage bounds keys; no real name is this long, but a
// guesser naming one still spends a budget.
func limitKey(prefix, value string) string {
	if len(value) > 256 {
		sum := sha256.Sum256([]byte(value))
		return prefix + "-sha256:" + hex.EncodeToString(sum[:])
	}
	return prefix + ":" + value
}

// limit takes one token from each of the database buckets keys of lim,
// all or none: a 429 with Retry-After (message) when any is spent, and
// then no bucket is charged, so that an address out of budget does not
// also spend the account's. An empty key is skipped (a request without
// a known address).
func (s *Server) limit(ctx context.Context, lim *ratelimit.Limiter, message string, keys ...string) error {
	var (
		ok   bool
		wait time.Duration
	)
	err := s.cfg.Store.Tx(ctx, func(tx storage.Tx) error {
		ok, wait = true, 0
		now := s.cfg.Now()
		nexts := make([]time.Time, len(keys))
		for i, key := range keys {
			if key == "" {
				continue
			}
			tat, err := tx.RateLimit(key)
			if err != nil {
				return err
			}
			next, took, w := lim.Take(key, tat, now)
			if !took {
				ok, wait = false, max(wait, w)
			}
			nexts[i] = next
		}
		if !ok {
			return nil
		}
		for i, key := range keys {
			if key == "" {
				continue
			}
			if err := tx.SetRateLimit(key, nexts[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if ok {
		return nil
	}
	return &httpError{status: http.StatusTooManyRequests, code: "rate_limited", message: message, retryAfter: wait}
}

// access is who may call a route.
type access int

const (
	public       access = iota // anyone (recovery desktop routes check their own token)
	anySession                 // any session, whatever its scope
	registration               // a full session, or one from an enrollment grant or a recovery
	ownKeys                    // a full session, or a recovery: list and revoke one's keys
	userRole                   // a full session
	helpdeskRole               // a full session of a helpdesk member or admin
	adminRole                  // a full session of an admin
)

// routes lists the API. Every route's access is stated here, where a
// review can read them all at once.
func (s *Server) routes() {
	v := api.Version
	s.handle("GET /openapi.yaml", public, s.openAPI)
	s.handle("GET /healthz", public, s.healthz)
	s.handle("GET /readyz", public, s.readyz)
	s.handle("POST "+v+"/login/begin", public, s.loginBegin)
	s.handle("POST "+v+"/login/finish", public, s.loginFinish)
	s.handle("POST "+v+"/grants/redeem", public, s.redeemGrant)
	s.handle("GET "+v+"/authenticators", public, s.authenticators)
	s.handle("GET "+v+"/authenticators/{aaguid}", public, s.authenticator)

	s.handle("GET "+v+"/me", anySession, s.me)
	s.handle("POST "+v+"/logout", anySession, s.logout)
	s.handle("POST "+v+"/registration/begin", registration, s.registrationBegin)
	s.handle("POST "+v+"/registration/finish", registration, s.registrationFinish)

	s.handle("GET "+v+"/me/keys", ownKeys, s.myKeys)
	s.handle("PATCH "+v+"/me/keys/{id}", userRole, s.renameMyKey)
	s.handle("POST "+v+"/me/keys/{id}/revoke", ownKeys, s.revokeMyKey)
	s.handle("GET "+v+"/me/recovery-codes", userRole, s.recoveryCodesStatus)
	s.handle("POST "+v+"/me/recovery-codes", userRole, s.generateRecoveryCodes)

	// Account recovery: the QR handoff (the phone's routes take the
	// session's secret, the desktop's its desktop token), recovery codes,
	// the phone page.
	s.handle("POST "+v+"/recovery/sessions", public, s.startRecovery)
	s.handle("POST "+v+"/recovery/sessions/{id}/describe", public, s.describeRecovery)
	s.handle("POST "+v+"/recovery/sessions/{id}/refuse", public, s.refuseRecovery)
	s.handle("POST "+v+"/recovery/sessions/{id}/approve/begin", public, s.approveRecoveryBegin)
	s.handle("POST "+v+"/recovery/sessions/{id}/approve/finish", public, s.approveRecoveryFinish)
	s.handle("GET "+v+"/recovery/sessions/{id}/events", public, s.recoveryEvents)
	s.handle("GET "+v+"/recovery/sessions/{id}/status", public, s.recoveryStatusPoll)
	s.handle("POST "+v+"/recovery/sessions/{id}/redeem", public, s.redeemRecovery)
	s.handle("POST "+v+"/recovery/codes/redeem", public, s.redeemRecoveryCode)
	s.handle("GET /r/{id}", public, s.phonePage)
	s.handle("GET /r/app.js", public, s.phoneScript)
	s.handle("GET /r/style.css", public, s.phoneStyle)
	s.handle("GET /favicon.ico", public, s.favicon)

	s.handle("GET "+v+"/users", helpdeskRole, s.searchUsers)
	s.handle("GET "+v+"/users/{name}", helpdeskRole, s.getUser)
	s.handle("GET "+v+"/users/{name}/keys", helpdeskRole, s.userKeys)
	s.handle("GET "+v+"/users/{name}/audit", helpdeskRole, s.userAudit)
	s.handle("POST "+v+"/users/{name}/grants", helpdeskRole, s.issueGrant)
	s.handle("POST "+v+"/users/{name}/keys/{id}/revoke", helpdeskRole, s.revokeUserKey)
	s.handle("POST "+v+"/users/{name}/recovery-grants", helpdeskRole, s.issueRecoveryGrant)
	s.handle("POST "+v+"/recovery-grants/{id}/approve", helpdeskRole, s.approveRecoveryGrant)
	s.handle("GET "+v+"/recovery/checklist", helpdeskRole, s.recoveryChecklist)

	s.handle("POST "+v+"/users", adminRole, s.createUser)
	s.handle("POST "+v+"/users/{name}/provisioning/begin", adminRole, s.provisionBegin)
	s.handle("POST "+v+"/users/{name}/provisioning/finish", adminRole, s.provisionFinish)
	s.handle("PUT "+v+"/users/{name}/roles", adminRole, s.setRoles)
	s.handle("PUT "+v+"/users/{name}/disabled", adminRole, s.setDisabled)
	s.handle("GET "+v+"/policy", adminRole, s.getPolicy)
	s.handle("PUT "+v+"/policy", adminRole, s.setPolicy)
	s.handle("GET "+v+"/audit", adminRole, s.exportAudit)
}

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request, _ *caller) error {
	w.Header().Set("Content-Type", "application/yaml")
	_, err := w.Write(api.OpenAPI)
	return err
}

// healthz answers that the process serves.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request, _ *caller) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// readyz answers whether the database answers, for a load balancer.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request, _ *caller) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.cfg.Store.Ping(ctx); err != nil {
		s.cfg.Logger.WarnContext(r.Context(), "not ready", "err", err)
		return problem(http.StatusServiceUnavailable, "not_ready", "The database does not answer.")
	}
	body := map[string]any{"status": "ready"}
	if m := s.mds.Load(); m != nil && !m.nextUpdate.IsZero() {
		body["mdsNextUpdate"] = m.nextUpdate
		body["mdsExpired"] = s.cfg.Now().After(m.nextUpdate)
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

// waConfig is go-webauthn's configuration for cfg, with mds or without.
func waConfig(cfg *Config, mds metadata.Provider) *webauthn.Config {
	return &webauthn.Config{
		RPID:          cfg.RPID,
		RPDisplayName: cfg.RPDisplayName,
		RPOrigins:     cfg.Origins,
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Enforce: true, Timeout: cfg.CeremonyTTL},
			Registration: webauthn.TimeoutConfig{Enforce: true, Timeout: cfg.CeremonyTTL},
		},
		MDS: mds,
	}
}

// mdsState is one FIDO metadata BLOB as the server uses it.
type mdsState struct {
	wa *webauthn.WebAuthn
	// provider answers what the BLOB says of a model (its name and
	// icon), for GET /v1/authenticators/{aaguid}.
	provider   metadata.Provider
	nextUpdate time.Time
}

// SetMDS makes provider (a BLOB rp/mds loaded, with its nextUpdate) the
// metadata that "verified" registrations are checked against from now
// on: a newer BLOB replaces the old one without a restart. A registration
// already being verified finishes with the BLOB it started with.
func (s *Server) SetMDS(provider metadata.Provider, nextUpdate time.Time) error {
	if provider == nil {
		return errors.New("server: set metadata: no provider")
	}
	wa, err := webauthn.New(waConfig(&s.cfg, provider))
	if err != nil {
		return fmt.Errorf("server: set metadata: %w", err)
	}
	s.mds.Store(&mdsState{wa: wa, provider: provider, nextUpdate: nextUpdate})
	return nil
}
