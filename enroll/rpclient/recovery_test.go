package rpclient_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keydesk/keydesk/enroll/rpclient"
	"github.com/keydesk/keydesk/rp/api"
	"github.com/keydesk/keydesk/rp/rptest"
)

// desktopKey is a desktop's ephemeral key and its SubjectPublicKeyInfo.
func desktopKey(t *testing.T) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return k, spki
}

// redeemSignature signs the redeem message of st (approved) with k.
func redeemSignature(t *testing.T, k *ecdsa.PrivateKey, st *api.RecoveryStatus) []byte {
	t.Helper()
	nonce, err := base64.RawURLEncoding.DecodeString(st.Nonce)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(api.RecoveryRedeemMessage(st.SessionID, nonce))
	sig, err := ecdsa.SignASN1(rand.Reader, k, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// recoveryUser gives root a key (through the app's calls) and a passkey
// on their phone (a software key that verifies its user, as rptest's
// phone does), registered in a full session, which c keeps.
func recoveryUser(t *testing.T, e *rpEnv) (phone *rptest.Key, c *rpclient.Client) {
	t.Helper()
	c = enrolledAdmin(t, e, newKey(t))
	phone, err := rptest.NewUVKey(rpOrigin)
	if err != nil {
		t.Fatal(err)
	}
	rc := &rptest.Client{BaseURL: e.url, Token: c.Token()}
	if _, err := rc.Register(phone, "phone"); err != nil {
		t.Fatalf("register the phone's passkey: %v", err)
	}
	return phone, c
}

// phoneApproves has the phone approve h with its passkey, as the page
// does.
func phoneApproves(t *testing.T, e *rpEnv, h *rpclient.RecoveryHandoff, phone *rptest.Key) {
	t.Helper()
	p := &rptest.Phone{Client: &rptest.Client{BaseURL: e.url}, SessionID: h.SessionID, Proof: api.RecoveryProof{Secret: h.Secret}}
	if _, err := p.Approve(phone, h.Number); err != nil {
		t.Fatalf("the phone's approval: %v", err)
	}
}

// TestRecoveryHandoff is the desktop's side of a QR handoff against the
// reference server: start, follow the events (pending, then approved
// the moment the phone approves), the status long poll, the redeem with
// the ephemeral key's signature, and the events' end.
func TestRecoveryHandoff(t *testing.T) {
	ctx := context.Background()
	e := newRP(t, envOptions{})
	phone, _ := recoveryUser(t, e)
	c := newClient(t, e.url, nil)
	key, spki := desktopKey(t)

	h, err := c.StartRecovery(ctx, admin, "build-laptop-7", spki)
	if err != nil {
		t.Fatalf("StartRecovery: %v", err)
	}
	u, err := url.Parse(h.URL)
	if err != nil || u.Fragment != h.Secret || !strings.HasSuffix(u.Path, "/r/"+h.SessionID) || u.Scheme+"://"+u.Host != rpOrigin {
		t.Fatalf("URL %q", h.URL)
	}
	if h.DesktopToken == "" || h.TypedCode == "" || h.Number < 10 || h.Number > 99 || h.ServerTime.IsZero() ||
		h.ExpiresAt.Sub(h.ServerTime) < 2*time.Minute {
		t.Fatalf("handoff %#v: %+v", h, h.RecoveryStart)
	}

	st, err := c.RecoveryStatus(ctx, h.SessionID, h.DesktopToken, "", 0)
	if err != nil || st.Status != "pending" || st.Nonce != "" {
		t.Fatalf("RecoveryStatus: %+v, %v", st, err)
	}
	events, err := c.RecoveryEvents(ctx, h.SessionID, h.DesktopToken)
	if err != nil {
		t.Fatalf("RecoveryEvents: %v", err)
	}
	defer events.Close()
	if st, err := events.Next(); err != nil || st.Status != "pending" {
		t.Fatalf("first event: %+v, %v", st, err)
	}
	if events.Retry() != time.Second {
		t.Errorf("Retry() = %v, want the server's 1 s", events.Retry())
	}

	// A long poll waits for the change, and answers on it.
	polled := make(chan *api.RecoveryStatus, 1)
	go func() {
		st, err := c.RecoveryStatus(ctx, h.SessionID, h.DesktopToken, "pending", 20*time.Second)
		if err != nil {
			t.Errorf("long poll: %v", err)
		}
		polled <- st
	}()
	time.Sleep(50 * time.Millisecond)
	approved := time.Now()
	phoneApproves(t, e, h, phone)
	ev, err := events.Next()
	if err != nil || ev.Status != "approved" || ev.Nonce == "" {
		t.Fatalf("event after the approval: %+v, %v", ev, err)
	}
	select {
	case st := <-polled:
		if st == nil || st.Status != "approved" || st.Nonce != ev.Nonce {
			t.Fatalf("long poll: %+v", st)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the long poll did not answer on the approval")
	}
	if took := time.Since(approved); took > time.Second {
		t.Errorf("the approval took %v to reach the desktop", took)
	}

	sess, token, err := c.RedeemRecovery(ctx, h.SessionID, h.DesktopToken, redeemSignature(t, key, &ev))
	if err != nil {
		t.Fatalf("RedeemRecovery: %v", err)
	}
	if sess.Scope != "recovery" || sess.User.Name != admin || token == "" || sess.Token != "" || c.Token() != token {
		t.Fatalf("session %+v (adopted: %v)", sess, c.Token() == token)
	}
	if me, err := c.Me(ctx); err != nil || me.Scope != "recovery" {
		t.Fatalf("Me: %+v, %v", me, err)
	}
	if st, err := events.Next(); err != nil || st.Status != "redeemed" {
		t.Fatalf("event after the redeem: %+v, %v", st, err)
	}
	if _, err := events.Next(); err != io.EOF {
		t.Fatalf("after the last status: %v, want io.EOF", err)
	}
	_, _, err = c.RedeemRecovery(ctx, h.SessionID, h.DesktopToken, redeemSignature(t, key, &ev))
	wantIs(t, err, rpclient.ErrRecoveryUsed, rpclient.ErrConflict)
}

// TestRecoveryRefusalsAreTyped: each refusal of the desktop's calls
// matches its sentinel, and bad arguments are refused before sending.
func TestRecoveryRefusalsAreTyped(t *testing.T) {
	ctx := context.Background()
	e := newRP(t, envOptions{})
	phone, _ := recoveryUser(t, e)
	c := newClient(t, e.url, nil)
	key, spki := desktopKey(t)
	h, err := c.StartRecovery(ctx, admin, "desk", spki)
	if err != nil {
		t.Fatal(err)
	}
	_, other := desktopKey(t)
	theirs, err := c.StartRecovery(ctx, admin, "desk", other)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("ShouldRefuseAnotherDesktopsToken", func(t *testing.T) {
		_, err := c.RecoveryEvents(ctx, h.SessionID, theirs.DesktopToken)
		wantIs(t, err, rpclient.ErrWrongDesktop, rpclient.ErrUnauthorized)
		_, err = c.RecoveryStatus(ctx, h.SessionID, theirs.DesktopToken, "", 0)
		wantIs(t, err, rpclient.ErrWrongDesktop)
		_, _, err = c.RedeemRecovery(ctx, h.SessionID, theirs.DesktopToken, []byte{1})
		wantIs(t, err, rpclient.ErrWrongDesktop)
	})
	t.Run("ShouldRefuseAnUnknownHandoff", func(t *testing.T) {
		_, err := c.RecoveryEvents(ctx, "AAAAAAAAAAAAAAAAAAAAAA", h.DesktopToken)
		wantIs(t, err, rpclient.ErrNotFound)
	})
	t.Run("ShouldRefuseARedeemBeforeTheApproval", func(t *testing.T) {
		st := &api.RecoveryStatus{SessionID: h.SessionID, Nonce: "AAAA"}
		_, _, err := c.RedeemRecovery(ctx, h.SessionID, h.DesktopToken, redeemSignature(t, key, st))
		wantIs(t, err, rpclient.ErrRecoveryNotApproved, rpclient.ErrConflict)
	})
	t.Run("ShouldRefuseBadArgumentsUnsent", func(t *testing.T) {
		for name, err := range map[string]error{
			"an ID with a slash": func() error { _, err := c.RecoveryStatus(ctx, "../me", h.DesktopToken, "", 0); return err }(),
			"no token":           func() error { _, err := c.RecoveryEvents(ctx, h.SessionID, ""); return err }(),
			"a token with a space": func() error {
				_, _, err := c.RedeemRecovery(ctx, h.SessionID, "a b", []byte{1})
				return err
			}(),
			"no signature": func() error { _, _, err := c.RedeemRecovery(ctx, h.SessionID, h.DesktopToken, nil); return err }(),
			"no key":       func() error { _, err := c.StartRecovery(ctx, admin, "desk", nil); return err }(),
		} {
			if !errors.Is(err, rpclient.ErrBadArgument) {
				t.Errorf("%s: %v, want ErrBadArgument", name, err)
			}
		}
	})
	t.Run("ShouldStopTheHandoffOnAnotherKeysSignature", func(t *testing.T) {
		phoneApproves(t, e, theirs, phone)
		st, err := c.RecoveryStatus(ctx, theirs.SessionID, theirs.DesktopToken, "", 0)
		if err != nil || st.Status != "approved" {
			t.Fatalf("status %+v, %v", st, err)
		}
		_, _, err = c.RedeemRecovery(ctx, theirs.SessionID, theirs.DesktopToken, redeemSignature(t, key, st))
		wantIs(t, err, rpclient.ErrWrongDesktop)
		st, err = c.RecoveryStatus(ctx, theirs.SessionID, theirs.DesktopToken, "", 0)
		if err != nil || st.Status != "refused" {
			t.Fatalf("status after a wrong signature: %+v, %v", st, err)
		}
		_, _, err = c.RedeemRecovery(ctx, theirs.SessionID, theirs.DesktopToken, []byte{1})
		wantIs(t, err, rpclient.ErrRecoveryRefused)
	})
	t.Run("ShouldSayExpired", func(t *testing.T) {
		e.clock.Advance(4 * time.Minute)
		st, err := c.RecoveryStatus(ctx, h.SessionID, h.DesktopToken, "", 0)
		if err != nil || st.Status != "expired" {
			t.Fatalf("status %+v, %v", st, err)
		}
		_, _, err = c.RedeemRecovery(ctx, h.SessionID, h.DesktopToken, []byte{1})
		wantIs(t, err, rpclient.ErrRecoveryExpired)
	})
}

// TestRecoveryRedeemsAreNotRetried: a redeem, of an approval or of a
// recovery code, whose answer is lost after the server acted is not sent
// again (the server spent it: a repeat would find it used); nor is a
// start (a repeat would start a second handoff).
func TestRecoveryRedeemsAreNotRetried(t *testing.T) {
	ctx := context.Background()
	e := newRP(t, envOptions{})
	phone, full := recoveryUser(t, e)
	codes, err := full.GenerateRecoveryCodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	key, spki := desktopKey(t)

	start, err := newClient(t, e.url, nil).StartRecovery(ctx, admin, "desk", spki)
	if err != nil {
		t.Fatal(err)
	}
	phoneApproves(t, e, start, phone)
	approved, err := newClient(t, e.url, nil).RecoveryStatus(ctx, start.SessionID, start.DesktopToken, "", 0)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		path string
		call func(c *rpclient.Client) error
		// then checks the server acted once.
		then func(t *testing.T)
	}{
		{"ShouldNotRepeatAStart", api.Version + "/recovery/sessions",
			func(c *rpclient.Client) error { _, err := c.StartRecovery(ctx, admin, "desk", spki); return err }, nil},
		{"ShouldNotRepeatARedeem", api.Version + "/recovery/sessions/" + start.SessionID + "/redeem",
			func(c *rpclient.Client) error {
				_, _, err := c.RedeemRecovery(ctx, start.SessionID, start.DesktopToken, redeemSignature(t, key, approved))
				return err
			},
			func(t *testing.T) {
				st, err := newClient(t, e.url, nil).RecoveryStatus(ctx, start.SessionID, start.DesktopToken, "", 0)
				if err != nil || st.Status != "redeemed" {
					t.Fatalf("the server did not redeem: %+v, %v", st, err)
				}
			}},
		{"ShouldNotRepeatACodesRedeem", api.Version + "/recovery/codes/redeem",
			func(c *rpclient.Client) error {
				_, _, err := c.RedeemRecoveryCode(ctx, admin, codes.Codes[0])
				return err
			},
			func(t *testing.T) {
				_, _, err := newClient(t, e.url, nil).RedeemRecoveryCode(ctx, admin, codes.Codes[0])
				wantIs(t, err, rpclient.ErrRecoveryCodeUsed, rpclient.ErrUnauthorized)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp := newTap(nil, map[string]int{tt.path: 1})
			c := newClient(t, e.url, func(cfg *rpclient.Config) { cfg.HTTPClient = &http.Client{Transport: tp} })
			err := tt.call(c)
			wantIs(t, err, rpclient.ErrNetwork)
			if xs := tp.seen(tt.path); len(xs) != 1 || xs[0].status/100 != 2 {
				t.Fatalf("the call was sent %d times (want once, answered 2xx): %+v", len(xs), xs)
			}
			if c.Token() != "" {
				t.Error("a lost answer left a token")
			}
			if tt.then != nil {
				tt.then(t)
			}
		})
	}
}

// TestRecoveryCodeCalls: generate a set, count it, redeem a code once.
func TestRecoveryCodeCalls(t *testing.T) {
	ctx := context.Background()
	e := newRP(t, envOptions{})
	full := enrolledAdmin(t, e, newKey(t))
	codes, err := full.GenerateRecoveryCodes(ctx)
	if err != nil || len(codes.Codes) != 10 || codes.GeneratedAt.IsZero() {
		t.Fatalf("GenerateRecoveryCodes: %+v, %v", codes, err)
	}
	if st, err := full.RecoveryCodesStatus(ctx); err != nil || st.Remaining != 10 || st.Total != 10 {
		t.Fatalf("RecoveryCodesStatus: %+v, %v", st, err)
	}
	c := newClient(t, e.url, nil)
	sess, token, err := c.RedeemRecoveryCode(ctx, admin, codes.Codes[2])
	if err != nil || sess.Scope != "recovery" || token == "" || c.Token() != token {
		t.Fatalf("RedeemRecoveryCode: %+v, %v", sess, err)
	}
	_, _, err = newClient(t, e.url, nil).RedeemRecoveryCode(ctx, admin, codes.Codes[2])
	wantIs(t, err, rpclient.ErrRecoveryCodeUsed)
	_, _, err = newClient(t, e.url, nil).RedeemRecoveryCode(ctx, admin, "AAAAA-AAAAA-AAAAA-AAAAA")
	wantIs(t, err, rpclient.ErrUnauthorized)
	if re := asError(t, err); re.Code != "bad_recovery_code" || errors.Is(err, rpclient.ErrRecoveryCodeUsed) {
		t.Fatalf("a wrong code: %+v", re)
	}
	if st, err := full.RecoveryCodesStatus(ctx); err != nil || st.Remaining != 9 {
		t.Fatalf("RecoveryCodesStatus after one use: %+v, %v", st, err)
	}
}

// TestRecoveryBadAnswers: servers that are not the API, or a hostile one,
// in place of the handoff's routes.
func TestRecoveryBadAnswers(t *testing.T) {
	ctx := context.Background()
	_, spki := desktopKey(t)
	const id = "abc"
	status := func(sessionID, s string) string {
		return fmt.Sprintf(`{"sessionId":%q,"status":%q,"expiresAt":"2030-01-01T00:00:00Z"}`, sessionID, s)
	}
	start := func(url string) string {
		return fmt.Sprintf(`{"sessionId":"abc","secret":"s3cr3t","url":%q,"typedCode":"AAAA-BBBB","desktopToken":"t","number":42,"expiresAt":"2030-01-01T00:00:00Z"}`, url)
	}
	tests := []struct {
		name    string
		handler http.HandlerFunc
		call    func(c *rpclient.Client) error
	}{
		{"ShouldRefuseASecretOutsideTheFragment", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(201)
			io.WriteString(w, start("https://rp.example/r/abc?s=s3cr3t#s3cr3t"))
		}, func(c *rpclient.Client) error { _, err := c.StartRecovery(ctx, "u", "d", spki); return err }},
		{"ShouldRefuseALinkToAnInsecureOrigin", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(201)
			io.WriteString(w, start("http://rp.example/r/abc#s3cr3t"))
		}, func(c *rpclient.Client) error { _, err := c.StartRecovery(ctx, "u", "d", spki); return err }},
		{"ShouldRefuseAnEventsAnswerThatIsNotAStream", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, status(id, "pending"))
		}, func(c *rpclient.Client) error { _, err := c.RecoveryEvents(ctx, id, "t"); return err }},
		{"ShouldRefuseAStatusOfAnotherHandoff", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "event: status\ndata: "+status("other", "approved")+"\n\n")
		}, func(c *rpclient.Client) error { return nextEvent(ctx, c, id) }},
		{"ShouldRefuseAnUnknownStatus", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "event: status\ndata: "+status(id, "granted")+"\n\n")
		}, func(c *rpclient.Client) error { return nextEvent(ctx, c, id) }},
		{"ShouldRefuseAnApprovalWithoutNonce", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, status(id, "approved"))
		}, func(c *rpclient.Client) error { _, err := c.RecoveryStatus(ctx, id, "t", "", 0); return err }},
		{"ShouldRefuseAnOverlongLine", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: "+strings.Repeat("x", 1<<20))
		}, func(c *rpclient.Client) error { return nextEvent(ctx, c, id) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			t.Cleanup(srv.Close)
			err := tt.call(newClient(t, srv.URL, nil))
			wantIs(t, err, rpclient.ErrBadResponse)
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("the error repeats the secret: %v", err)
			}
		})
	}
}

// nextEvent opens handoff id's stream and reads one status.
func nextEvent(ctx context.Context, c *rpclient.Client, id string) error {
	s, err := c.RecoveryEvents(ctx, id, "t")
	if err != nil {
		return err
	}
	defer s.Close()
	_, err = s.Next()
	return err
}

// TestRecoveryHandoffFormatsWithoutSecrets: printing or logging a started
// handoff shows its ID, never its secret, typed code or desktop token.
func TestRecoveryHandoffFormatsWithoutSecrets(t *testing.T) {
	h := rpclient.RecoveryHandoff{RecoveryStart: api.RecoveryStart{SessionID: "sid", Secret: "SECRET", URL: "https://x/r/sid#SECRET",
		TypedCode: "CODE-CODE", DesktopToken: "TOKEN", Number: 42, ExpiresAt: time.Now()}}
	var log strings.Builder
	slog.New(slog.NewJSONHandler(&log, nil)).Info("started", "handoff", h)
	for _, out := range []string{fmt.Sprint(h), fmt.Sprintf("%+v", h), fmt.Sprintf("%#v", h), fmt.Sprintf("%v", &h), log.String()} {
		if !strings.Contains(out, "sid") || strings.Contains(out, "SECRET") || strings.Contains(out, "CODE") || strings.Contains(out, "TOKEN") {
			t.Errorf("formatted as %q", out)
		}
	}
}
