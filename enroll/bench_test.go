package enroll_test

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keydesk/keydesk/enroll"
	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/libfido2"
	"github.com/keydesk/keydesk/platform/softkey"
	"github.com/keydesk/keydesk/platform/softkey/softkeytest"
	"github.com/keydesk/keydesk/rp/api"
	"github.com/keydesk/keydesk/rp/rptest"
)

// timedKey is a software key engine that counts the time it spends
// answering CTAP commands: the key's own work, left out of the client's.
type timedKey struct {
	*softkey.Authenticator
	ns atomic.Int64
}

func (k *timedKey) CBOR(ctx context.Context, req []byte, keepalive func(byte)) []byte {
	start := time.Now()
	defer func() { k.ns.Add(int64(time.Since(start))) }()
	return k.Authenticator.CBOR(ctx, req, keepalive)
}

// timedServer counts the time the RP's handlers take.
type timedServer struct{ ns atomic.Int64 }

func (s *timedServer) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		next.ServeHTTP(w, r)
		s.ns.Add(int64(time.Since(start)))
	})
}

// BenchmarkCeremonies times a full enrollment and a full sign-in with
// Service against the software key behind the real libfido2 and the
// reference RP on loopback, and splits each ceremony's time into the
// key's own work (its CTAP handler), the server's (its HTTP handlers)
// and the client's: everything else — Keydesk's WebAuthn client, the API
// client, libfido2, the shim, HTTP on loopback. Issue 6's target: client
// under 5 ms per ceremony.
func BenchmarkCeremonies(b *testing.B) {
	ctx := context.Background()
	srv := &timedServer{}
	e := newEnv(b, srv.wrap)
	// An administrator with a key issues each user's code.
	adminTokens := &memTokens{}
	admin := e.service(b, adminTokens, enroll.UI{})
	adminKey, _ := openKey(b, softkey.Config{})
	if _, err := admin.SignInWithCode(ctx, "root", e.code); err != nil {
		b.Fatal(err)
	}
	if _, err := admin.Enroll(ctx, adminKey, "admin key"); err != nil {
		b.Fatal(err)
	}
	if _, err := admin.SignIn(ctx, adminKey, "root"); err != nil {
		b.Fatal(err)
	}
	tok, _ := adminTokens.Get("test")
	adminAPI := &rptest.Client{BaseURL: e.url, Token: tok}
	// Non-discoverable credentials: one key serves every user without
	// filling its resident storage.
	if r, err := adminAPI.Do("PUT", api.Version+"/policy", api.Policy{Attestation: "any", ResidentKey: "discouraged"}, nil); err != nil {
		b.Fatalf("policy: %v %+v", err, r)
	}

	engine, err := softkey.New(softkey.Config{})
	if err != nil {
		b.Fatal(err)
	}
	tk := &timedKey{Authenticator: engine}
	sk := softkeytest.ServeHandler(b, engine, tk)
	key, err := libfido2.New(libfido2.Config{}).Open(ctx, platform.Device{Path: sk.Path, Transport: platform.TransportUSB})
	if err != nil {
		b.Fatal(err)
	}
	defer key.Close()

	var total, keyNS, serverNS [2]time.Duration // enroll, sign in
	measure := func(i int, f func() error) error {
		k0, s0, t0 := tk.ns.Load(), srv.ns.Load(), time.Now()
		err := f()
		total[i] += time.Since(t0)
		keyNS[i] += time.Duration(tk.ns.Load() - k0)
		serverNS[i] += time.Duration(srv.ns.Load() - s0)
		return err
	}
	b.ResetTimer()
	for n := range b.N {
		b.StopTimer()
		name := fmt.Sprintf("user%d", n)
		if _, err := adminAPI.Do("POST", api.Version+"/users", api.CreateUserRequest{Name: name}, nil); err != nil {
			b.Fatal(err)
		}
		var g api.Grant
		if _, err := adminAPI.Do("POST", api.Version+"/users/"+name+"/grants", api.IssueGrantRequest{}, &g); err != nil {
			b.Fatal(err)
		}
		s := e.service(b, &memTokens{}, enroll.UI{})
		if _, err := s.SignInWithCode(ctx, name, g.Code); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := measure(0, func() error { _, err := s.Enroll(ctx, key, "blue"); return err }); err != nil {
			b.Fatal(err)
		}
		if err := measure(1, func() error { _, err := s.SignIn(ctx, key, name); return err }); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / float64(b.N) }
	for i, name := range []string{"enroll", "signin"} {
		client := total[i] - keyNS[i] - serverNS[i]
		b.ReportMetric(ms(client), name+"-client-ms/op")
		b.ReportMetric(ms(keyNS[i]), name+"-key-ms/op")
		b.ReportMetric(ms(serverNS[i]), name+"-server-ms/op")
	}
}
