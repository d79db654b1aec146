package recovery_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/png"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/keydesk/keydesk/enroll/rpclient"
	"github.com/keydesk/keydesk/recovery"
	"github.com/keydesk/keydesk/rp/api"
	"github.com/keydesk/keydesk/rp/rptest"
	"github.com/keydesk/keydesk/rp/server"
	"github.com/keydesk/keydesk/rp/storage"
)

// The desktop's side of the handoff on its own, with rptest's phone (a
// software passkey that verifies its user) standing in for Chromium where
// the phone's page is not what is tested.

// softPhone registers a software passkey for root, in the full session
// of token, and returns it.
func (e *env) softPhone(t testing.TB, token string) *rptest.Key {
	t.Helper()
	k, err := rptest.NewUVKey(e.origin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.adminClient(token).Register(k, "phone"); err != nil {
		t.Fatalf("register the phone's passkey: %v", err)
	}
	return k
}

// softApprove approves h with the software passkey as the page does
// (describe, pick the number, assert), and returns when it sent the
// approval (after the passkey signed).
func (e *env) softApprove(t testing.TB, h *recovery.Handoff, phone *rptest.Key) time.Time {
	t.Helper()
	p := &rptest.Phone{Client: &rptest.Client{BaseURL: e.srv.URL}, SessionID: h.SessionID(), Proof: api.RecoveryProof{Secret: h.Secret()}}
	if _, _, err := p.Describe(); err != nil {
		t.Fatalf("describe: %v", err)
	}
	begin, _, err := p.Begin(h.Number())
	if err != nil {
		t.Fatalf("approve/begin: %v", err)
	}
	cred, err := phone.Get(begin.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	if _, err := p.Client.Do("POST", api.Version+"/recovery/sessions/"+h.SessionID()+"/approve/finish",
		api.RecoveryApproveFinishRequest{RecoveryProof: p.Proof, CeremonyID: begin.CeremonyID, Credential: cred}, nil); err != nil {
		t.Fatalf("approve/finish: %v", err)
	}
	return sent
}

// TestWaitFallsBackToLongPoll: where the events stream cannot work (a
// proxy refuses it, or cuts it), Wait long-polls the status instead and
// still learns of the approval at once.
func TestWaitFallsBackToLongPoll(t *testing.T) {
	tests := []struct {
		name string
		// events answers the events route in the proxy's place; nil
		// passes it on.
		events func(w http.ResponseWriter, r *http.Request, next http.Handler)
	}{
		{"ShouldLongPollWhenTheStreamIsRefused", func(w http.ResponseWriter, r *http.Request, _ http.Handler) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprint(w, "<html>Bad gateway</html>")
		}},
		{"ShouldLongPollWhenTheStreamIsCut", func(w http.ResponseWriter, r *http.Request, next http.Handler) {
			// The first event goes through, then the connection drops.
			ctx, cancel := context.WithTimeout(r.Context(), 100*time.Millisecond)
			defer cancel()
			next.ServeHTTP(w, r.WithContext(ctx))
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
			}
		}},
		{"ShouldLongPollWhenTheStreamIsNotAStream", func(w http.ResponseWriter, r *http.Request, _ http.Handler) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, "{}")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var streams, polls atomic.Int32
			e := newEnvWrapped(t, func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					switch {
					case strings.HasSuffix(r.URL.Path, "/events"):
						streams.Add(1)
						tt.events(w, r, next)
					case strings.HasSuffix(r.URL.Path, "/status"):
						polls.Add(1)
						next.ServeHTTP(w, r)
					default:
						next.ServeHTTP(w, r)
					}
				})
			})
			a, _ := e.enrollFirstKey(t, openKey(t), "desk key")
			phone := e.softPhone(t, a.token(t))
			h := e.start(t, "build-laptop-7")
			waiting := waitAsync(h, 30*time.Second)
			for deadline := time.Now().Add(5 * time.Second); polls.Load() == 0; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("Wait never long-polled")
				}
			}
			sent := e.softApprove(t, h, phone)
			r := result(t, waiting, 5*time.Second)
			if r.err != nil || r.o.Status != recovery.Approved {
				t.Fatalf("Wait = %+v, %v", r.o, r.err)
			}
			if took := r.o.At.Sub(sent); took > time.Second {
				t.Errorf("the desktop learned of the approval %v after it", took)
			}
			if streams.Load() == 0 || polls.Load() == 0 {
				t.Errorf("%d stream(s), %d poll(s): want the stream tried, then polls", streams.Load(), polls.Load())
			}
			if _, _, err := h.Redeem(context.Background()); err != nil {
				t.Fatalf("Redeem: %v", err)
			}
		})
	}
}

// TestWaitConcludesExpiryOnItsOwn: a server that never answers (its
// stream and its long polls hang) does not keep the desktop waiting past
// the handoff's lifetime: Wait says Expired a little after Deadline.
func TestWaitConcludesExpiryOnItsOwn(t *testing.T) {
	defer recovery.SetExpiryGrace(100 * time.Millisecond)()
	e := newEnvWrapped(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/events") || strings.HasSuffix(r.URL.Path, "/status") {
				<-r.Context().Done() // a black hole
				return
			}
			next.ServeHTTP(w, r)
		})
	}, func(c *server.Config) { c.RecoveryTTL = 2 * time.Second })
	h := e.start(t, "desk")
	if left := h.Remaining(time.Now()); left <= 0 || left > 3*time.Second {
		t.Fatalf("countdown at %v, want the server's 2 s", left)
	}
	r := result(t, waitAsync(h, time.Minute), 10*time.Second)
	if r.err != nil || r.o.Status != recovery.Expired {
		t.Fatalf("Wait = %+v, %v; want expired", r.o, r.err)
	}
	if late := r.o.At.Sub(h.Deadline()); late < 0 || late > 2*time.Second {
		t.Errorf("Wait concluded %v after the deadline", late)
	}
	if _, _, err := h.Redeem(context.Background()); !errors.Is(err, recovery.ErrExpired) {
		t.Errorf("Redeem = %v, want ErrExpired", err)
	}
}

// newEnvWrapped is newEnv behind a proxy.
func newEnvWrapped(t testing.TB, wrap func(http.Handler) http.Handler, configure ...func(*server.Config)) *env {
	t.Helper()
	e := &env{logs: &syncBuffer{}, notes: &rptest.Notes{}}
	e.srv = rptest.StartServer(t, rptest.ServerOptions{RPID: "localhost", LocalOrigin: true, Wrap: wrap, Configure: func(c *server.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(e.logs, nil))
		c.Notify = e.notes.Add
		for _, f := range configure {
			f(c)
		}
	}})
	e.origin = e.srv.Config.Origins[0]
	return e
}

// TestRedeem covers Redeem's states: before the approval, after it
// without a Wait (Redeem asks the server), twice, after Close, and after
// an answer lost on the way back (the same signature is sent again, the
// key being gone, and finds the approval used).
func TestRedeem(t *testing.T) {
	ctx := context.Background()
	var cut atomic.Bool
	e := newEnvWrapped(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r)
			if strings.HasSuffix(r.URL.Path, "/redeem") && cut.CompareAndSwap(true, false) {
				panic(http.ErrAbortHandler) // the answer is lost, the redeem done
			}
		})
	})
	a, _ := e.enrollFirstKey(t, openKey(t), "desk key")
	phone := e.softPhone(t, a.token(t))

	t.Run("ShouldRefuseBeforeTheApprovalThenRedeemWithoutAWait", func(t *testing.T) {
		h := e.start(t, "desk")
		if _, _, err := h.Redeem(ctx); !errors.Is(err, recovery.ErrNotApproved) {
			t.Fatalf("Redeem before the approval = %v, want ErrNotApproved", err)
		}
		e.softApprove(t, h, phone)
		sess, token, err := h.Redeem(ctx)
		if err != nil || sess.Scope != "recovery" || token == "" {
			t.Fatalf("Redeem: %+v, %v", sess, err)
		}
		if _, _, err := h.Redeem(ctx); !errors.Is(err, recovery.ErrUsed) {
			t.Fatalf("a second Redeem = %v, want ErrUsed", err)
		}
		if o, err := h.Wait(ctx); !errors.Is(err, recovery.ErrUsed) {
			t.Fatalf("Wait after the redeem = %+v, %v; want ErrUsed", o, err)
		}
	})
	t.Run("ShouldRefuseAfterClose", func(t *testing.T) {
		h := e.start(t, "desk")
		e.softApprove(t, h, phone)
		h.Close()
		if _, _, err := h.Redeem(ctx); !errors.Is(err, recovery.ErrClosed) {
			t.Fatalf("Redeem after Close = %v, want ErrClosed", err)
		}
	})
	t.Run("ShouldResendTheSignatureAfterALostAnswer", func(t *testing.T) {
		h := e.start(t, "desk")
		e.softApprove(t, h, phone)
		if o, err := h.Wait(ctx); err != nil || o.Status != recovery.Approved {
			t.Fatalf("Wait = %+v, %v", o, err)
		}
		cut.Store(true)
		if _, _, err := h.Redeem(ctx); !errors.Is(err, rpclient.ErrNetwork) {
			t.Fatalf("Redeem with its answer lost = %v, want ErrNetwork", err)
		}
		if _, _, err := h.Redeem(ctx); !errors.Is(err, recovery.ErrUsed) {
			t.Fatalf("Redeem again = %v, want ErrUsed (the first one went through)", err)
		}
	})
}

// TestHandoffShowsNoSecrets: a handoff printed or logged shows its ID,
// never its link, secret, typed code or desktop token.
func TestHandoffShowsNoSecrets(t *testing.T) {
	e := newEnv(t, nil)
	h := e.start(t, "desk")
	var log bytes.Buffer
	slog.New(slog.NewJSONHandler(&log, nil)).Info("started", "handoff", h)
	for _, out := range []string{fmt.Sprint(h), fmt.Sprintf("%+v", h), fmt.Sprintf("%#v", h), h.String(), log.String()} {
		if !strings.Contains(out, h.SessionID()) {
			t.Errorf("%q does not name the handoff", out)
		}
		for name, s := range map[string]string{"secret": h.Secret(), "typed code": h.TypedCode(), "desktop token": h.DesktopToken()} {
			if strings.Contains(out, s) {
				t.Errorf("%q shows the %s", out, name)
			}
		}
	}
}

// TestQR: the PNG is the requested size and holds the handoff's whole
// link, as go-qrcode encodes it (read back module by module); the text
// form is the same code; sizes out of bounds are refused.
func TestQR(t *testing.T) {
	e := newEnv(t, nil)
	h := e.start(t, "desk")
	want, err := qrcode.New(h.URL(), qrcode.Medium)
	if err != nil {
		t.Fatal(err)
	}
	bits := want.Bitmap() // with its quiet zone
	for _, size := range []int{recovery.MinQRSize, 300, 512} {
		b, err := h.QR(size)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if img.Bounds().Dx() != size || img.Bounds().Dy() != size {
			t.Fatalf("QR(%d) is %v", size, img.Bounds())
		}
		// QR centres the modules, each size/n pixels wide.
		n := len(bits)
		px := size / n
		off := (size - px*n) / 2
		for y := range n {
			for x := range n {
				r, _, _, _ := img.At(off+x*px+px/2, off+y*px+px/2).RGBA()
				if dark := r < 0x8000; dark != bits[y][x] {
					t.Fatalf("QR(%d): module (%d,%d) is dark=%v, want %v", size, x, y, dark, bits[y][x])
				}
			}
		}
	}
	for _, size := range []int{0, -1, recovery.MinQRSize - 1, recovery.MaxQRSize + 1} {
		if _, err := h.QR(size); !errors.Is(err, recovery.ErrQRSize) {
			t.Errorf("QR(%d) = %v, want ErrQRSize", size, err)
		}
	}
	text, err := h.QRText(false)
	if err != nil || text != want.ToSmallString(false) || !strings.ContainsAny(text, "▀▄█") {
		t.Fatalf("QRText: %v\n%s", err, text)
	}
}

// stallingStore holds the next read of a recovery session, once armed,
// until released: the moment between an events stream reading its
// session and starting to watch it.
type stallingStore struct {
	storage.Store
	armed   atomic.Bool
	held    chan struct{}
	release chan struct{}
}

func (s *stallingStore) RecoverySession(ctx context.Context, id string) (*storage.RecoverySession, error) {
	rs, err := s.Store.RecoverySession(ctx, id)
	if s.armed.CompareAndSwap(true, false) {
		s.held <- struct{}{}
		<-s.release
	}
	return rs, err
}

// TestApprovalAsTheStreamOpensArrivesAtOnce: an approval committed while
// the desktop's events stream is opening, after the server read the
// session and before it watched it for changes, reaches the desktop at
// once, not at the stream's next poll of the database (made an hour here,
// so that only the wake-up can deliver it).
func TestApprovalAsTheStreamOpensArrivesAtOnce(t *testing.T) {
	store := &stallingStore{held: make(chan struct{}), release: make(chan struct{})}
	e := newEnv(t, func(c *server.Config) {
		store.Store = c.Store
		c.Store = store
		c.RecoveryPollInterval = time.Hour
	})
	a, _ := e.enrollFirstKey(t, openKey(t), "desk key")
	phone := e.softPhone(t, a.token(t))
	h := e.start(t, "desk")
	p := &rptest.Phone{Client: &rptest.Client{BaseURL: e.srv.URL}, SessionID: h.SessionID(), Proof: api.RecoveryProof{Secret: h.Secret()}}
	begin, _, err := p.Begin(h.Number())
	if err != nil {
		t.Fatal(err)
	}
	cred, err := phone.Get(begin.PublicKey)
	if err != nil {
		t.Fatal(err)
	}

	store.armed.Store(true)
	waiting := waitAsync(h, 30*time.Second)
	<-store.held // the stream has read the session: pending
	if _, err := p.Client.Do("POST", api.Version+"/recovery/sessions/"+h.SessionID()+"/approve/finish",
		api.RecoveryApproveFinishRequest{RecoveryProof: p.Proof, CeremonyID: begin.CeremonyID, Credential: cred}, nil); err != nil {
		t.Fatal(err)
	}
	close(store.release)
	if r := result(t, waiting, 5*time.Second); r.err != nil || r.o.Status != recovery.Approved {
		t.Fatalf("Wait = %+v, %v", r.o, r.err)
	}
}
