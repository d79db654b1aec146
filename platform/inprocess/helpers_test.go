package inprocess

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/softkey"
)

// testPIN is the PIN tests set on their keys.
const testPIN = "1234"

// clock is a key clock tests move, safe for the engine to read while a
// test advances it.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// testKey is a Key over an in-memory engine, with the engine and its
// clock at hand.
type testKey struct {
	*Key
	engine *softkey.Authenticator
	clock  *clock
}

// newKey creates an in-memory key; cfg.Now is replaced by a test clock.
func newKey(t *testing.T, cfg softkey.Config) *testKey {
	t.Helper()
	c := newClock()
	cfg.Now = c.Now
	a, err := softkey.New(cfg)
	if err != nil {
		t.Fatalf("softkey.New: %v", err)
	}
	return &testKey{Key: New(a), engine: a, clock: c}
}

// newKeyWithPIN is newKey with testPIN set.
func newKeyWithPIN(t *testing.T, cfg softkey.Config) *testKey {
	t.Helper()
	k := newKey(t, cfg)
	if err := k.SetPIN(context.Background(), testPIN); err != nil {
		t.Fatalf("SetPIN: %v", err)
	}
	return k
}

// info reads Info or fails the test.
func (k *testKey) mustInfo(t *testing.T) *platform.Info {
	t.Helper()
	info, err := k.Info(context.Background())
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	return info
}

// makeCredential registers a discoverable credential for rpID directly
// with the engine, as a browser would, with a token of permission mc.
// credProtect 0 leaves the extension out.
func (k *testKey) makeCredential(t *testing.T, rpID, user string, credProtect int) {
	t.Helper()
	ctx := context.Background()
	info := k.mustInfo(t)
	tok, err := k.pinToken(ctx, "test", info, testPIN, softkey.PermMakeCredential, rpID)
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	cdh := sha256.Sum256([]byte("client data " + rpID + user))
	req := map[int]any{
		1: cdh[:],
		2: map[string]any{"id": rpID, "name": "RP " + rpID},
		3: map[string]any{"id": []byte("uid-" + user), "name": user, "displayName": "User " + user},
		4: []any{map[string]any{"type": "public-key", "alg": -7}},
		7: map[string]bool{"rk": true},
		8: tok.auth(cdh[:]),
		9: tok.proto,
	}
	if credProtect != 0 {
		req[6] = map[string]any{"credProtect": credProtect}
	}
	if err := k.call(ctx, "test", softkey.CmdMakeCredential, req, nil); err != nil {
		t.Fatalf("makeCredential %s/%s: %v", rpID, user, err)
	}
}

// recorder collects progress events.
type recorder struct {
	mu     sync.Mutex
	events []platform.ProgressEvent
	// on, when set, hears each event as it is reported.
	on func(platform.ProgressEvent)
}

func (r *recorder) report(ev platform.ProgressEvent) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	on := r.on
	r.mu.Unlock()
	if on != nil {
		on(ev)
	}
}

func (r *recorder) stages() []platform.ProgressEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]platform.ProgressEvent(nil), r.events...)
}

func (r *recorder) has(s platform.Stage) bool {
	for _, ev := range r.stages() {
		if ev.Stage == s {
			return true
		}
	}
	return false
}

// wantKind fails unless err is a *platform.Error of kind (nil for success).
func wantKind(t *testing.T, err, kind error) {
	t.Helper()
	if kind == nil {
		if err != nil {
			t.Fatalf("got %v, want success", err)
		}
		return
	}
	var e *platform.Error
	if !errors.As(err, &e) || !errors.Is(err, kind) {
		t.Fatalf("got %v (%T), want *platform.Error of kind %q", err, err, kind)
	}
}

// retriesLeft returns the RetriesLeft of a *platform.Error.
func retriesLeft(t *testing.T, err error) int {
	t.Helper()
	var e *platform.Error
	if !errors.As(err, &e) {
		t.Fatalf("%v is not a *platform.Error", err)
	}
	return e.RetriesLeft
}
