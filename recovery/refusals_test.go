package recovery_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keydesk/keydesk/enroll"
	"github.com/keydesk/keydesk/enroll/rpclient"
	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/recovery"
	"github.com/keydesk/keydesk/recovery/phonetest"
	"github.com/keydesk/keydesk/rp/api"
	"github.com/keydesk/keydesk/rp/audit"
	"github.com/keydesk/keydesk/rp/rptest"
	"github.com/keydesk/keydesk/rp/server"
)

// The handoff's failures, each on both screens: the phone in Chromium
// (what its page says), the desktop in package recovery (what Wait and
// Redeem say), and the audit log.

// phoneUser is root with a security key enrolled in the app (the app
// keeps its full session, for the audit export) and a passkey on a phone.
type phoneUser struct {
	app     *app
	key     platform.Authenticator
	phone   *phonetest.Phone
	browser *phonetest.Browser
}

// newPhoneUser sets up root on e with a key and a phone.
func newPhoneUser(t *testing.T, e *env) *phoneUser {
	t.Helper()
	b := sharedBrowser(t)
	key := openKey(t)
	a, _ := e.enrollFirstKey(t, key, "desk key")
	phone := b.NewPhone(t)
	e.registerPhonePasskey(t, phone, a.token(t))
	return &phoneUser{app: a, key: key, phone: phone, browser: b}
}

// start starts a handoff for root from a new desktop client.
func (e *env) start(t *testing.T, desktopName string) *recovery.Handoff {
	t.Helper()
	h, err := recovery.Start(context.Background(), e.client(t), "root", desktopName)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(h.Close)
	return h
}

// approve has phone open h's link and approve it with the right number.
func approve(t *testing.T, phone *phonetest.Phone, h *recovery.Handoff) {
	t.Helper()
	scan(phone, h.URL())
	phone.WaitVisible("#describe")
	pick(t, phone, h.Number())
	phone.WaitVisible("#done")
}

// scan opens url on phone as a new scan of the QR code does: a new page,
// even when the phone shows that link already (a navigation that only
// adds a fragment to the page's own address would not load it again).
func scan(phone *phonetest.Phone, url string) {
	phone.Navigate("about:blank")
	phone.Navigate(url)
}

// checkPage is phone.CheckNoErrors for a page that was refused on
// purpose: Chromium logs every answer of an error status as a failed
// load ("network" source), which here are the refusals under test, from
// the recovery API. Anything else (an exception, a console error of the
// page, another failed load) and any CSP violation fails the test.
func checkPage(t *testing.T, phone *phonetest.Phone) {
	t.Helper()
	for _, m := range phone.Console() {
		if m.IsError() && !(m.Source == "network" && strings.Contains(m.URL, "/v1/recovery/sessions/")) {
			t.Errorf("page error: %s", m)
		}
	}
	for _, v := range phone.CSPViolations() {
		t.Errorf("CSP violation: %s blocked %q on %s", v.Directive, v.BlockedURI, v.DocumentURI)
	}
}

// stopped waits for the page's final message and returns it.
func stopped(t *testing.T, phone *phonetest.Phone) string {
	t.Helper()
	return phone.Text("#stopped-text")
}

// TestPhoneStopsTheHandoff: the user taps another number than the
// desktop's (what someone tricked into approving another's request would
// do), or "This was not me": the handoff ends, the desktop says so at
// once, the page too, and nothing can redeem it.
func TestPhoneStopsTheHandoff(t *testing.T) {
	e := newEnv(t, nil)
	u := newPhoneUser(t, e)
	tests := []struct {
		name string
		// stop makes the phone stop the handoff.
		stop   func(t *testing.T, h *recovery.Handoff)
		page   string // what the page then says
		reason string // the audit log's reason
		// refusal and desktop are what the desktop is told.
		refusal recovery.Refusal
		desktop string
	}{
		{"ShouldStopOnAWrongNumber", func(t *testing.T, h *recovery.Handoff) {
			pick(t, u.phone, wrongNumber(t, u.phone, h.Number()))
		}, "not the number your computer shows", "wrong_number", recovery.RefusedWrongNumber, "pick the number shown here"},
		{"ShouldStopWhenThePhoneSaysNotMe", func(t *testing.T, h *recovery.Handoff) {
			u.phone.Click("#deny")
		}, "Nobody can use this request now", "denied_on_phone", recovery.RefusedNotMe, `"This was not me" was tapped`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := e.start(t, "kiosk-3")
			waiting := waitAsync(h, time.Minute)
			scan(u.phone, h.URL())
			u.phone.WaitVisible("#describe")
			tt.stop(t, h)
			if msg := stopped(t, u.phone); !strings.Contains(msg, tt.page) {
				t.Errorf("the page says %q", msg)
			}
			r := result(t, waiting, 5*time.Second)
			if r.err != nil || r.o.Status != recovery.Refused || r.o.Refusal != tt.refusal || !strings.Contains(r.o.Reason, tt.desktop) {
				t.Fatalf("Wait = %+v, %v; want refused for %s, saying %q", r.o, r.err, tt.refusal, tt.desktop)
			}
			if err := r.o.Err(); !errors.Is(err, recovery.ErrRefused) {
				t.Errorf("Outcome.Err() = %v", err)
			}
			if _, _, err := h.Redeem(context.Background()); !errors.Is(err, recovery.ErrRefused) {
				t.Errorf("Redeem = %v, want ErrRefused", err)
			}
			// A second try with the same link is refused too.
			scan(u.phone, h.URL())
			if msg := stopped(t, u.phone); !strings.Contains(msg, "stopped") {
				t.Errorf("the page, opened again, says %q", msg)
			}
			checkPage(t, u.phone)
			entries, _ := e.auditLog(t, u.app.token(t))
			if countAudit(entries, audit.ActionRecoveryRefused, "root", map[string]string{"id": h.SessionID(), "reason": tt.reason}) != 1 {
				t.Error("the refusal is not in the audit log")
			}
			e.notes.WaitFor(t, "root", server.NotifyRecoveryRefused)
		})
	}
}

// TestSecondScanIsRefused: once approved, the QR code is worth nothing to
// whoever scans it next (a photograph of it, the same phone again):
// their page says so, and the desktop's recovery goes on undisturbed.
func TestSecondScanIsRefused(t *testing.T) {
	e := newEnv(t, nil)
	u := newPhoneUser(t, e)
	h := e.start(t, "build-laptop-7")
	waiting := waitAsync(h, time.Minute)
	approve(t, u.phone, h)
	if r := result(t, waiting, 5*time.Second); r.err != nil || r.o.Status != recovery.Approved {
		t.Fatalf("Wait = %+v, %v", r.o, r.err)
	}

	other := u.browser.NewPhone(t) // the photograph's
	other.Navigate(h.URL())
	if msg := stopped(t, other); !strings.Contains(msg, "already approved") {
		t.Errorf("a second scan after the approval shows %q", msg)
	}
	if _, _, err := h.Redeem(context.Background()); err != nil {
		t.Fatalf("Redeem after a second scan: %v", err)
	}
	scan(u.phone, h.URL())
	if msg := stopped(t, u.phone); !strings.Contains(msg, "already used") {
		t.Errorf("a scan after the redeem shows %q", msg)
	}
	checkPage(t, other)
	checkPage(t, u.phone)
	entries, _ := e.auditLog(t, u.app.token(t))
	if n := countAudit(entries, audit.ActionRecoveryApproved, "root", map[string]string{"id": h.SessionID()}); n != 1 {
		t.Errorf("%d approvals in the audit log, want 1", n)
	}
}

// TestExpiryOnBothSides: nobody approves in time (the server's clock
// moves past the three minutes): the desktop says so within the events
// stream's poll, the open page refuses the number, a new scan is
// refused, and the desktop cannot redeem.
func TestExpiryOnBothSides(t *testing.T) {
	e := newEnv(t, nil)
	u := newPhoneUser(t, e)
	h := e.start(t, "build-laptop-7")
	waiting := waitAsync(h, time.Minute)
	u.phone.Navigate(h.URL())
	u.phone.WaitVisible("#describe")

	e.srv.Clock.Advance(e.srv.Config.RecoveryTTL + time.Second)
	moved := time.Now()
	r := result(t, waiting, 5*time.Second)
	if r.err != nil || r.o.Status != recovery.Expired || r.o.Reason == "" {
		t.Fatalf("Wait = %+v, %v; want expired", r.o, r.err)
	}
	if took := r.o.At.Sub(moved); took > time.Second {
		t.Errorf("the desktop learned of the expiry %v after it, want within the stream's poll (%v)", took, e.srv.Config.RecoveryPollInterval)
	}
	pick(t, u.phone, h.Number())
	if msg := stopped(t, u.phone); !strings.Contains(msg, "expired") {
		t.Errorf("the open page, tapped after the expiry, says %q", msg)
	}
	scan(u.phone, h.URL())
	if msg := stopped(t, u.phone); !strings.Contains(msg, "expired") {
		t.Errorf("a scan after the expiry shows %q", msg)
	}
	if _, _, err := h.Redeem(context.Background()); !errors.Is(err, recovery.ErrExpired) {
		t.Errorf("Redeem = %v, want ErrExpired", err)
	}
	checkPage(t, u.phone)
	// The expiry moved the server's clock past the app's step-up; its
	// session (an hour) still reads the audit log.
	entries, _ := e.auditLog(t, u.app.token(t))
	if countAudit(entries, audit.ActionRecoveryExpired, "root", map[string]string{"id": h.SessionID()}) != 1 {
		t.Error("the expiry is not in the audit log")
	}
	if n := e.notes.WaitFor(t, "root", server.NotifyRecoveryExpired); n.DesktopName != "build-laptop-7" {
		t.Errorf("expiry notification %+v", n)
	}
}

// TestPageOnAnotherOriginFailsClosed: the link opened at another address
// of the same server (http://127.0.0.1:PORT rather than
// http://localhost:PORT, as a hand-copied or rewritten link would be):
// the passkey belongs to "localhost", which the page at 127.0.0.1 may not
// use. The page stops with a message instead of asking the passkey,
// nothing is approved, and the real link still works.
func TestPageOnAnotherOriginFailsClosed(t *testing.T) {
	e := newEnv(t, nil)
	u := newPhoneUser(t, e)
	h := e.start(t, "build-laptop-7")
	elsewhere := strings.Replace(h.URL(), "//localhost:", "//127.0.0.1:", 1)
	if elsewhere == h.URL() {
		t.Fatalf("no localhost in %s", h.URL())
	}
	count := u.phone.Credentials()[0].SignCount

	u.phone.Navigate(elsewhere)
	u.phone.WaitVisible("#describe")
	pick(t, u.phone, h.Number())
	if msg := stopped(t, u.phone); !strings.Contains(msg, "not at your account's own address") || !strings.Contains(msg, "Nothing was approved") {
		t.Errorf("the page at another origin says %q", msg)
	}
	if c := u.phone.Credentials()[0].SignCount; c != count {
		t.Errorf("the passkey signed at another origin (count %d, then %d)", count, c)
	}
	st, err := e.client(t).RecoveryStatus(context.Background(), h.SessionID(), h.DesktopToken(), "", 0)
	if err != nil || st.Status != "pending" {
		t.Fatalf("status after the other origin: %+v, %v; want pending", st, err)
	}
	u.phone.CheckNoErrors()

	// The link as the QR code has it still works.
	waiting := waitAsync(h, time.Minute)
	approve(t, u.phone, h)
	if r := result(t, waiting, 5*time.Second); r.err != nil || r.o.Status != recovery.Approved {
		t.Fatalf("Wait = %+v, %v", r.o, r.err)
	}
	u.phone.CheckNoErrors()
}

// TestPageTheBrowserRefusesFailsClosed: the page's own check of the RP ID
// (onRPID) passes and the browser still refuses the passkey with a
// SecurityError. A proxy in front of the RP answers approve/begin with the
// page's host, an IP address, as the RP ID: the page's check accepts it
// (the page is at that host), the browser does not (WebAuthn takes no IP
// address). approve() tells it as the wrong address and stops, rather
// than offering to retry; the passkey does not sign, nothing is approved,
// and the real link still works.
func TestPageTheBrowserRefusesFailsClosed(t *testing.T) {
	rewritten := 0
	var mu sync.Mutex
	rewrite := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			host, _, _ := net.SplitHostPort(r.Host)
			if host != "127.0.0.1" || !strings.HasSuffix(r.URL.Path, "/approve/begin") {
				next.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			var begin map[string]any
			if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &begin) != nil {
				t.Errorf("approve/begin answered %d %s", rec.Code, rec.Body)
				w.WriteHeader(http.StatusBadGateway)
				return
			}
			pk, _ := begin["publicKey"].(map[string]any)
			if pk == nil || pk["rpId"] != "localhost" {
				t.Errorf("approve/begin's options %s", rec.Body)
			} else {
				pk["rpId"] = host
				mu.Lock()
				rewritten++
				mu.Unlock()
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(begin)
		})
	}
	e := &env{logs: &syncBuffer{}, notes: &rptest.Notes{}}
	e.srv = rptest.StartServer(t, rptest.ServerOptions{RPID: "localhost", LocalOrigin: true, Wrap: rewrite})
	e.origin = e.srv.Config.Origins[0]
	u := newPhoneUser(t, e)
	h := e.start(t, "build-laptop-7")
	elsewhere := strings.Replace(h.URL(), "//localhost:", "//127.0.0.1:", 1)
	if elsewhere == h.URL() {
		t.Fatalf("no localhost in %s", h.URL())
	}
	count := u.phone.Credentials()[0].SignCount

	u.phone.Navigate(elsewhere)
	u.phone.WaitVisible("#describe")
	// Record how the browser answers the page's passkey request.
	u.phone.Eval(`(() => {
		const get = navigator.credentials.get.bind(navigator.credentials);
		navigator.credentials.get = (options) => get(options).catch((err) => {
			globalThis.__refused = err.name;
			throw err;
		});
		return true;
	})()`, nil)
	pick(t, u.phone, h.Number())
	msg := stopped(t, u.phone)
	var refused string
	u.phone.Eval(`globalThis.__refused || ""`, &refused)
	mu.Lock()
	n := rewritten
	mu.Unlock()
	if n != 1 || refused != "SecurityError" {
		t.Fatalf("%d options rewritten, the browser answered %q: the test did not reach the browser's SecurityError", n, refused)
	}
	if !strings.Contains(msg, "not at your account's own address") || !strings.Contains(msg, "Nothing was approved") {
		t.Errorf("after the browser's SecurityError the page says %q", msg)
	}
	if c := u.phone.Credentials()[0].SignCount; c != count {
		t.Errorf("the passkey signed (count %d, then %d)", count, c)
	}
	st, err := e.client(t).RecoveryStatus(context.Background(), h.SessionID(), h.DesktopToken(), "", 0)
	if err != nil || st.Status != "pending" {
		t.Fatalf("status after the SecurityError: %+v, %v; want pending", st, err)
	}
	checkPage(t, u.phone)

	waiting := waitAsync(h, time.Minute)
	approve(t, u.phone, h)
	if r := result(t, waiting, 5*time.Second); r.err != nil || r.o.Status != recovery.Approved {
		t.Fatalf("Wait = %+v, %v", r.o, r.err)
	}
}

// TestAnotherDesktopCannotRedeem: an approval belongs to the desktop that
// started the handoff. Another desktop (its own handoff, token and key)
// can neither follow nor redeem it; a thief holding the desktop's token
// but not its key stops the handoff by trying.
func TestAnotherDesktopCannotRedeem(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	u := newPhoneUser(t, e)

	t.Run("ShouldRefuseAnotherDesktopsTokenAndLeaveTheHandoffBe", func(t *testing.T) {
		mine := e.start(t, "build-laptop-7")
		theirs := e.start(t, "attacker-pc")
		waiting := waitAsync(mine, time.Minute)
		approve(t, u.phone, mine)
		if r := result(t, waiting, 5*time.Second); r.err != nil || r.o.Status != recovery.Approved {
			t.Fatalf("Wait = %+v, %v", r.o, r.err)
		}
		thief := e.client(t)
		if _, err := thief.RecoveryEvents(ctx, mine.SessionID(), theirs.DesktopToken()); !errors.Is(err, recovery.ErrWrongDesktop) {
			t.Errorf("following another desktop's handoff = %v, want ErrWrongDesktop", err)
		}
		if _, _, err := thief.RedeemRecovery(ctx, mine.SessionID(), theirs.DesktopToken(), []byte{0x30, 0x00}); !errors.Is(err, recovery.ErrWrongDesktop) {
			t.Errorf("redeeming another desktop's handoff = %v, want ErrWrongDesktop", err)
		}
		if thief.Token() != "" {
			t.Error("the thief got a session")
		}
		sess, _, err := mine.Redeem(ctx)
		if err != nil || sess.Scope != "recovery" {
			t.Fatalf("the desktop's own Redeem: %+v, %v", sess, err)
		}
	})

	t.Run("ShouldStopTheHandoffWhenAnotherKeySigns", func(t *testing.T) {
		mine := e.start(t, "build-laptop-7")
		waiting := waitAsync(mine, time.Minute)
		approve(t, u.phone, mine)
		if r := result(t, waiting, 5*time.Second); r.err != nil || r.o.Status != recovery.Approved {
			t.Fatalf("Wait = %+v, %v", r.o, r.err)
		}
		// The thief has the desktop token (and so the nonce), not the key:
		// a handoff of their own gives them another key, which signs.
		thief := e.client(t)
		st, err := thief.RecoveryStatus(ctx, mine.SessionID(), mine.DesktopToken(), "", 0)
		if err != nil || st.Status != "approved" {
			t.Fatalf("status: %+v, %v", st, err)
		}
		sig := signWithNewKey(t, mine.SessionID(), st.Nonce)
		if _, _, err := thief.RedeemRecovery(ctx, mine.SessionID(), mine.DesktopToken(), sig); !errors.Is(err, recovery.ErrWrongDesktop) {
			t.Fatalf("a redeem signed by another key = %v, want ErrWrongDesktop", err)
		}
		if _, _, err := mine.Redeem(ctx); !errors.Is(err, recovery.ErrRefused) {
			t.Fatalf("the desktop's Redeem after the thief's = %v, want ErrRefused (the handoff is stopped)", err)
		}
		entries, _ := e.auditLog(t, u.app.token(t))
		if countAudit(entries, audit.ActionRecoveryRefused, "root", map[string]string{"id": mine.SessionID(), "reason": "bad_desktop_signature"}) != 1 {
			t.Error("the stopped handoff is not in the audit log")
		}
	})
}

// TestRecoveryCodeThenRecover: the fallback without a phone. Root printed
// recovery codes while they had their key (a newer set replaced an older
// one); the key is lost; a code gives a recovery session, and Recover
// enrolls the replacement and revokes the lost key. The code works once,
// a wrong code and an unknown user get the same answer, and a guesser is
// throttled.
func TestRecoveryCodeThenRecover(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, func(c *server.Config) { c.AccountRate, c.AccountBurst = 1.0/60, 6 })
	lostKey := openKey(t)
	a, lost := e.enrollFirstKey(t, lostKey, "desk key")
	old, err := a.api.GenerateRecoveryCodes(ctx)
	if err != nil {
		t.Fatalf("GenerateRecoveryCodes: %v", err)
	}
	codes, err := a.api.GenerateRecoveryCodes(ctx)
	if err != nil || len(codes.Codes) != 10 {
		t.Fatalf("GenerateRecoveryCodes again: %+v, %v", codes, err)
	}
	if st, err := a.api.RecoveryCodesStatus(ctx); err != nil || st.Remaining != 10 {
		t.Fatalf("RecoveryCodesStatus: %+v, %v", st, err)
	}
	adminToken := a.token(t)

	desktop := e.client(t)
	// Attempts 1 to 3 of the account's budget of 6.
	if _, _, err := recovery.RedeemCode(ctx, desktop, "root", old.Codes[0]); !errors.Is(err, recovery.ErrBadCode) || !errors.Is(err, rpclient.ErrUnauthorized) {
		t.Errorf("a code of the replaced set = %v, want ErrBadCode", err)
	}
	if _, _, err := recovery.RedeemCode(ctx, desktop, "nobody", codes.Codes[0]); !errors.Is(err, recovery.ErrBadCode) {
		t.Errorf("an unknown user = %v, want ErrBadCode (the same answer as a wrong code)", err)
	}
	// Typed by hand: lower case, spaces for dashes.
	typed := strings.ToLower(strings.ReplaceAll(codes.Codes[3], "-", " "))
	sess, token, err := recovery.RedeemCode(ctx, desktop, "root", typed)
	if err != nil || sess.Scope != "recovery" || token == "" {
		t.Fatalf("RedeemCode: %+v, %v", sess, err)
	}

	replacement := openKey(t)
	var ev recorder
	cfg := e.config(t, enroll.UI{Event: ev.add})
	bogus := func([]enroll.Key) ([]string, error) { return []string{"AAAA"}, nil }
	if _, err := recovery.Recover(ctx, cfg, token, recovery.Plan{Replacement: replacement, SelectLost: bogus}); !errors.Is(err, recovery.ErrUnknownKey) {
		t.Fatalf("Recover choosing an unknown key = %v, want ErrUnknownKey", err)
	}
	sum, err := recovery.Recover(ctx, cfg, token, recovery.Plan{Replacement: replacement,
		SelectLost: func([]enroll.Key) ([]string, error) { return []string{lost.ID}, nil }})
	if err != nil {
		t.Fatalf("Recover: %v\n%s", err, ev.text())
	}
	if len(sum.Revoked) != 1 || sum.Revoked[0].ID != lost.ID || sum.Enrolled.Nickname != "replacement" {
		t.Fatalf("summary %+v", sum)
	}
	check := e.app(t, enroll.UI{})
	if _, err := check.SignIn(ctx, lostKey, ""); !errors.Is(err, rpclient.ErrKeyRevoked) {
		t.Errorf("the lost key = %v, want ErrKeyRevoked", err)
	}
	if _, err := check.SignIn(ctx, replacement, "root"); err != nil {
		t.Errorf("the replacement: %v", err)
	}

	// Attempt 4: the used code.
	if _, _, err := recovery.RedeemCode(ctx, desktop, "root", codes.Codes[3]); !errors.Is(err, recovery.ErrCodeUsed) {
		t.Errorf("a used code = %v, want ErrCodeUsed", err)
	}
	// Attempts 5 and 6 spend the budget; the 7th is refused, even with a
	// good code, until the wait the server names.
	for i := range 2 {
		if _, _, err := recovery.RedeemCode(ctx, desktop, "root", "0000-0000-0000-000"+string(rune('0'+i))); !errors.Is(err, recovery.ErrBadCode) {
			t.Fatalf("guess %d = %v", i, err)
		}
	}
	_, _, err = recovery.RedeemCode(ctx, desktop, "root", codes.Codes[5])
	var re *rpclient.Error
	if !errors.Is(err, rpclient.ErrRateLimited) || !errors.As(err, &re) || re.RetryAfter <= 0 {
		t.Fatalf("a guess past the budget = %v, want ErrRateLimited with a wait", err)
	}
	entries, export := e.auditLog(t, adminToken)
	if countAudit(entries, audit.ActionRecoveryRedeemed, "root", map[string]string{"method": "recovery_code", "remaining": "9"}) != 1 {
		t.Error("the code's redemption is not in the audit log")
	}
	if countAudit(entries, audit.ActionRecoveryFailed, "root", map[string]string{"method": "recovery_code", "reason": "used"}) != 1 {
		t.Error("the used code is not in the audit log")
	}
	secrets := map[string]string{"recovery session token": token}
	for i, c := range append(old.Codes, codes.Codes...) {
		secrets["code "+string(rune('a'+i))] = c
		secrets["code "+string(rune('A'+i))] = strings.ReplaceAll(c, "-", "")
	}
	wantNoSecrets(t, "audit log", export, secrets)
	wantNoSecrets(t, "server log", e.logs.Bytes(), secrets)
}

// signWithNewKey signs the redeem message of session id and nonce with a
// fresh key, not the handoff's: what a thief's desktop has.
func signWithNewKey(t *testing.T, id, nonce string) []byte {
	t.Helper()
	n, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(api.RecoveryRedeemMessage(id, n))
	sig, err := ecdsa.SignASN1(rand.Reader, k, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return sig
}
