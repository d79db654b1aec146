package provision_test

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keydesk/keydesk/enroll/provision"
	"github.com/keydesk/keydesk/enroll/provision/journal"
	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/libfido2"
	"github.com/keydesk/keydesk/platform/softkey"
	"github.com/keydesk/keydesk/platform/softkey/softkeytest"
	"github.com/keydesk/keydesk/rp/api"
	"github.com/keydesk/keydesk/rp/rptest"
)

// plugger is the batch's KeySource: each Next plugs in the next key of
// its plan (a fresh software key unless the plan says otherwise), and
// records which key went to which attempt.
type plugger struct {
	t *testing.T
	// tb is t's, or a benchmark's.
	tb testing.TB
	mu sync.Mutex
	// plan, when it has an entry for the n-th key (from 0), says what
	// to plug instead of a fresh key: a key plugged earlier (a re-plug),
	// another model...
	plan map[int]func() platform.Authenticator
	// before runs before the n-th key is plugged (to stop or restart
	// the service, say).
	before map[int]func()
	keys   []platform.Authenticator
}

func (p *plugger) Next(ctx context.Context) (platform.Authenticator, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	n := len(p.keys)
	f, b := p.plan[n], p.before[n]
	p.mu.Unlock()
	if b != nil {
		b()
	}
	var k platform.Authenticator
	if f != nil {
		k = f()
	} else {
		tb := p.tb
		if tb == nil {
			tb = p.t
		}
		k, _ = plug(tb, softkey.Config{})
	}
	p.mu.Lock()
	p.keys = append(p.keys, k)
	p.mu.Unlock()
	return k, nil
}

// said collects what the batch told the operator.
type said struct {
	mu    sync.Mutex
	lines []string
}

func (s *said) say(line string) { s.mu.Lock(); s.lines = append(s.lines, line); s.mu.Unlock() }
func (s *said) all() string     { s.mu.Lock(); defer s.mu.Unlock(); return strings.Join(s.lines, "\n") }

// batchConfig is a batch of users on e into dir.
func (e *env) batchConfig(t *testing.T, dir string, users []provision.User, keys provision.KeySource, s *said) provision.BatchConfig {
	return provision.BatchConfig{
		Provision: e.config(func(c *provision.Config) {
			c.ConfirmReset = func(context.Context, provision.KeyFacts) (bool, error) { return true, nil }
		}),
		Users: users, Dir: dir, Keys: keys, Operator: provision.Operator{Say: s.say},
		Retry: 20 * time.Millisecond,
	}
}

func names(n int) []provision.User {
	var us []provision.User
	for i := range n {
		us = append(us, provision.User{Name: fmt.Sprintf("user%02d", i+1)})
	}
	return us
}

func (e *env) createUsers(t *testing.T, us []provision.User) {
	t.Helper()
	for _, u := range us {
		e.users(t, u.Name)
	}
}

var pinLine = regexp.MustCompile(`PIN: (\S+)`)

// pinFromPage reads the PIN back from a handover page with the real
// pdftotext, as printed.
func pinFromPage(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("pdftotext", path, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext %s: %v (poppler-utils is installed by make deps)", path, err)
	}
	m := pinLine.FindAllStringSubmatch(string(out), -1)
	if len(m) != 1 {
		t.Fatalf("%s: %d PIN lines", path, len(m))
	}
	return m[0][1]
}

// readResults reads results.csv by user.
func readResults(t *testing.T, dir string) map[string][]string {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, provision.ResultsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, r := range recs[1:] {
		out[r[0]] = r
	}
	return out
}

// checkHandedOver checks, for each user, what the employee receives: the
// key (keys[user]) enrolled for them alone, whose PIN is the one printed on
// their page (it opens the key, must be changed, and then signs them in),
// with the minimum PIN length set; and that no PIN is in the results or
// the journal.
func (e *env) checkHandedOver(t *testing.T, dir string, keys map[string]platform.Authenticator) {
	t.Helper()
	ctx := context.Background()
	results := readResults(t, dir)
	var files []string
	for _, f := range []string{provision.ResultsFile, provision.JournalFile} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, string(b))
	}
	for user, key := range keys {
		r := results[user]
		if r == nil || r[5] != "enrolled" {
			t.Errorf("%s: result %q", user, r)
			continue
		}
		pin := pinFromPage(t, filepath.Join(dir, r[7]))
		for i, f := range files {
			if strings.Contains(f, pin) {
				t.Errorf("%s's PIN is in %s", user, []string{provision.ResultsFile, provision.JournalFile}[i])
			}
		}
		info, err := key.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !info.ForcePINChange || info.MinPINLength != 6 {
			t.Errorf("%s's key: forcePINChange %v, minPINLength %d", user, info.ForcePINChange, info.MinPINLength)
		}
		if _, err := e.signInAs(t, key, user, pin); !errors.Is(err, platform.ErrPINPolicy) {
			t.Errorf("%s: sign-in before changing the PIN: %v", user, err)
		}
		if err := key.ChangePIN(ctx, pin, "chosen-"+user); err != nil {
			t.Errorf("%s: the printed PIN does not open the key: %v", user, err)
			continue
		}
		if s, err := e.signInAs(t, key, user, "chosen-"+user); err != nil || s.User.Name != user {
			t.Errorf("%s: sign-in after the PIN change: %v", user, err)
		}
		active := 0
		got, err := e.admin.UserKeys(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range got {
			if k.RevokedAt == nil {
				active++
				if k.ID != r[4] || k.Batch != "test batch" || k.ProvisionedBy != "root" {
					t.Errorf("%s: key %+v, result %q", user, k, r)
				}
			}
		}
		if active != 1 {
			t.Errorf("%s has %d usable keys, want 1", user, active)
		}
	}
}

// TestBatchOfTwenty provisions twenty users, one key after another.
func TestBatchOfTwenty(t *testing.T) {
	e := newEnv(t, rptest.ServerOptions{})
	users := names(20)
	e.createUsers(t, users)
	dir := t.TempDir()
	keys := &plugger{t: t}
	var s said
	sum, err := provision.RunBatch(context.Background(), e.batchConfig(t, dir, users, keys, &s))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Enrolled != 20 || sum.Failed != 0 || sum.Pending != 0 || len(keys.keys) != 20 {
		t.Fatalf("summary %+v, %d keys plugged", sum, len(keys.keys))
	}
	byUser := map[string]platform.Authenticator{}
	for i, u := range users {
		byUser[u.Name] = keys.keys[i]
	}
	e.checkHandedOver(t, dir, byUser)
	for _, want := range []string{"Insert a key for user01 (1 of 20).", "Done: user20's key is enrolled"} {
		if !strings.Contains(s.all(), want) {
			t.Errorf("the operator was not told %q:\n%s", want, s.all())
		}
	}
	// A second run of the same batch has nothing left to do.
	sum, err = provision.RunBatch(context.Background(), e.batchConfig(t, dir, users, &plugger{t: t, plan: map[int]func() platform.Authenticator{
		0: func() platform.Authenticator { t.Fatal("a finished batch asked for a key"); return nil },
	}}, &s))
	if err != nil || sum.Enrolled != 20 {
		t.Fatalf("rerun: %+v, %v", sum, err)
	}
}

// TestBatchFailures: what goes wrong with one key or the service leaves
// every user enrolled once, with nothing half-done unreported.
func TestBatchFailures(t *testing.T) {
	otherModel := [16]byte{0xee, 0x88, 0x28, 0x79, 0x72, 0x1c, 0x49, 0x13, 0x97, 0x75, 0x3d, 0xfc, 0xce, 0x97, 0x07, 0x2a}

	t.Run("ShouldRefuseAKeyOutsidePolicyUntouched", func(t *testing.T) {
		e := newEnv(t, rptest.ServerOptions{})
		users := names(2)
		e.createUsers(t, users)
		if _, err := e.admin.SetPolicy(context.Background(), apiPolicyDenying(otherModel)); err != nil {
			t.Fatal(err)
		}
		var denied platform.Authenticator
		keys := &plugger{t: t, plan: map[int]func() platform.Authenticator{
			0: func() platform.Authenticator { denied, _ = plug(t, softkey.Config{AAGUID: otherModel}); return denied },
		}}
		var s said
		dir := t.TempDir()
		sum, err := provision.RunBatch(context.Background(), e.batchConfig(t, dir, users, keys, &s))
		if err != nil || sum.Enrolled != 2 {
			t.Fatalf("%+v, %v", sum, err)
		}
		if info, _ := denied.Info(context.Background()); info.PINSet() {
			t.Fatal("the refused key was changed")
		}
		if !strings.Contains(s.all(), "This key cannot be used and was not changed") {
			t.Errorf("the operator was not told:\n%s", s.all())
		}
		e.checkHandedOver(t, dir, map[string]platform.Authenticator{"user01": keys.keys[1], "user02": keys.keys[2]})
	})

	t.Run("ShouldContinueWhenTheKeyIsPluggedBackIn", func(t *testing.T) {
		e := newEnv(t, rptest.ServerOptions{})
		users := names(1)
		e.createUsers(t, users)
		// The first key is pulled out as the enrollment starts, and
		// plugged back in.
		first, firstSK := plug(t, softkey.Config{})
		var once sync.Once
		cfg := e.batchConfig(t, t.TempDir(), users, nil, &said{})
		keys := &plugger{t: t, plan: map[int]func() platform.Authenticator{
			0: func() platform.Authenticator { return first },
			1: func() platform.Authenticator {
				// Plugged back: the same software key on a new path.
				return reopen(t, firstSK)
			},
		}}
		cfg.Keys = keys
		cfg.Provision.Progress = func(p provision.Progress) {
			if p.Step == provision.StepEnroll {
				once.Do(firstSK.Stop)
			}
		}
		sum, err := provision.RunBatch(context.Background(), cfg)
		if err != nil || sum.Enrolled != 1 || len(keys.keys) != 2 {
			t.Fatalf("%+v, %v, %d keys", sum, err, len(keys.keys))
		}
		e.checkHandedOver(t, cfg.Dir, map[string]platform.Authenticator{"user01": keys.keys[1]})
	})

	t.Run("ShouldRefuseAWrongKeyPluggedBackIn", func(t *testing.T) {
		e := newEnv(t, rptest.ServerOptions{})
		users := names(1)
		e.createUsers(t, users)
		first, firstSK := plug(t, softkey.Config{})
		var wrong platform.Authenticator
		var once sync.Once
		var s said
		cfg := e.batchConfig(t, t.TempDir(), users, nil, &s)
		keys := &plugger{t: t, plan: map[int]func() platform.Authenticator{
			0: func() platform.Authenticator { return first },
			1: func() platform.Authenticator { wrong, _ = plug(t, softkey.Config{}); return wrong },
			2: func() platform.Authenticator { return reopen(t, firstSK) },
		}}
		cfg.Keys = keys
		cfg.Provision.Progress = func(p provision.Progress) {
			if p.Step == provision.StepVerify {
				once.Do(firstSK.Stop) // enrolled, not yet verified
			}
		}
		sum, err := provision.RunBatch(context.Background(), cfg)
		if err != nil || sum.Enrolled != 1 || len(keys.keys) != 3 {
			t.Fatalf("%+v, %v, %d keys", sum, err, len(keys.keys))
		}
		if info, _ := wrong.Info(context.Background()); info.PINSet() {
			t.Fatal("the wrong key was changed")
		}
		if !strings.Contains(s.all(), "This is not the key user01's provisioning started on") {
			t.Errorf("the operator was not told:\n%s", s.all())
		}
		e.checkHandedOver(t, cfg.Dir, map[string]platform.Authenticator{"user01": keys.keys[2]})
	})

	t.Run("ShouldWaitForAKeyAnotherProgramHasForAMoment", func(t *testing.T) {
		e := newEnv(t, rptest.ServerOptions{})
		users := names(1)
		e.createUsers(t, users)
		var busy *busyOnce
		keys := &plugger{t: t, plan: map[int]func() platform.Authenticator{
			0: func() platform.Authenticator {
				k, _ := plug(t, softkey.Config{})
				busy = &busyOnce{Authenticator: k}
				return busy
			},
		}}
		cfg := e.batchConfig(t, t.TempDir(), users, keys, &said{})
		sum, err := provision.RunBatch(context.Background(), cfg)
		if err != nil || sum.Enrolled != 1 || len(keys.keys) != 1 || busy.calls < 2 {
			t.Fatalf("%+v, %v, %d keys, %d reads", sum, err, len(keys.keys), busy.calls)
		}
	})

	t.Run("ShouldAskAgainAKeyThatDoesNotAnswerAtOnce", func(t *testing.T) {
		// As a key whose node udev has not yet given its permissions.
		e := newEnv(t, rptest.ServerOptions{})
		users := names(1)
		e.createUsers(t, users)
		var late *lateKey
		keys := &plugger{t: t, plan: map[int]func() platform.Authenticator{
			0: func() platform.Authenticator {
				k, _ := plug(t, softkey.Config{})
				late = &lateKey{Authenticator: k, fails: 2}
				return late
			},
		}}
		sum, err := provision.RunBatch(context.Background(), e.batchConfig(t, t.TempDir(), users, keys, &said{}))
		if err != nil || sum.Enrolled != 1 || len(keys.keys) != 1 {
			t.Fatalf("%+v, %v, %d keys", sum, err, len(keys.keys))
		}
	})

	t.Run("ShouldStopWhenTheAdminsSessionEnds", func(t *testing.T) {
		e := newEnv(t, rptest.ServerOptions{})
		users := names(3)
		e.createUsers(t, users)
		dir := t.TempDir()
		cfg := e.batchConfig(t, dir, users, &plugger{t: t}, &said{})
		cfg.Operator.UserDone = func(r provision.Result) {
			if r.User == "user01" {
				if err := e.admin.Logout(context.Background()); err != nil {
					t.Error(err)
				}
			}
		}
		sum, err := provision.RunBatch(context.Background(), cfg)
		if !errors.Is(err, provision.ErrSessionEnded) || sum.Enrolled != 1 || sum.Failed != 0 || sum.Pending != 2 {
			t.Fatalf("a run whose session ended: %+v, %v", sum, err)
		}
		e.signInAgain(t)
		sum, err = provision.RunBatch(context.Background(), e.batchConfig(t, dir, users, &plugger{t: t}, &said{}))
		if err != nil || sum.Enrolled != 3 {
			t.Fatalf("resumed after signing in again: %+v, %v", sum, err)
		}
	})

	t.Run("ShouldWaitForTheServiceToComeBack", func(t *testing.T) {
		var down sync.Mutex
		var isDown bool
		e := newEnv(t, rptest.ServerOptions{Wrap: func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				down.Lock()
				d := isDown
				down.Unlock()
				if d {
					http.Error(w, "down", http.StatusBadGateway)
					return
				}
				h.ServeHTTP(w, r)
			})
		}})
		users := names(3)
		e.createUsers(t, users)
		var s said
		cfg := e.batchConfig(t, t.TempDir(), users, &plugger{t: t}, &s)
		var once sync.Once
		cfg.Provision.Progress = func(p provision.Progress) {
			// The service goes down as user02's key is enrolled, and
			// comes back a little later.
			if p.User == "user02" && p.Step == provision.StepEnroll {
				once.Do(func() {
					down.Lock()
					isDown = true
					down.Unlock()
					time.AfterFunc(150*time.Millisecond, func() { down.Lock(); isDown = false; down.Unlock() })
				})
			}
		}
		sum, err := provision.RunBatch(context.Background(), cfg)
		if err != nil || sum.Enrolled != 3 {
			t.Fatalf("%+v, %v", sum, err)
		}
		if !strings.Contains(s.all(), "The service did not answer") {
			t.Errorf("the operator was not told:\n%s", s.all())
		}
		keys := cfg.Keys.(*plugger).keys
		e.checkHandedOver(t, cfg.Dir, map[string]platform.Authenticator{"user01": keys[0], "user02": keys[1], "user03": keys[2]})
	})

	t.Run("ShouldResumeAStoppedRunWithoutEnrollingAnyoneTwice", func(t *testing.T) {
		e := newEnv(t, rptest.ServerOptions{})
		users := names(5)
		e.createUsers(t, users)
		dir := t.TempDir()
		ctx, stop := context.WithCancel(context.Background())
		cfg := e.batchConfig(t, dir, users, &plugger{t: t}, &said{})
		// The process stops once user03's key is enrolled, before it is
		// verified and its PIN page written.
		cfg.Provision.Progress = func(p provision.Progress) {
			if p.User == "user03" && p.Step == provision.StepVerify {
				stop()
			}
		}
		first := cfg.Keys.(*plugger)
		if _, err := provision.RunBatch(ctx, cfg); !errors.Is(err, context.Canceled) {
			t.Fatalf("stopped run: %v", err)
		}
		j, _, recs, err := journal.Open(filepath.Join(dir, provision.JournalFile), journal.Header{Batch: "test batch", Service: "https://localhost"})
		if err != nil {
			t.Fatal(err)
		}
		j.Close()
		if last := journal.Last(recs); last["user02"].Event != journal.Done || last["user03"].Event != journal.Enrolled {
			t.Fatalf("journal after the stop: %+v", last)
		}
		var s said
		again := e.batchConfig(t, dir, users, &plugger{t: t}, &s)
		sum, err := provision.RunBatch(context.Background(), again)
		if err != nil || sum.Enrolled != 5 || sum.Revoked != 1 {
			t.Fatalf("resumed: %+v, %v", sum, err)
		}
		second := again.Keys.(*plugger)
		if len(second.keys) != 3 {
			t.Fatalf("the resumed run used %d keys, want 3 (user03 again, user04, user05)", len(second.keys))
		}
		r := readResults(t, dir)
		if !strings.Contains(r["user03"][6], "interrupted attempt's key") {
			t.Errorf("user03's revoked key is not reported: %q", r["user03"])
		}
		e.checkHandedOver(t, dir, map[string]platform.Authenticator{
			"user01": first.keys[0], "user02": first.keys[1],
			"user03": second.keys[0], "user04": second.keys[1], "user05": second.keys[2],
		})
	})
}

// reopen opens the software key sk served again, as when it is plugged
// back in: the same key (its state), on a new path.
func reopen(t *testing.T, sk *softkeytest.Key) platform.Authenticator {
	t.Helper()
	sk.Authenticator.PowerCycle()
	again := softkeytest.ServeAuthenticator(t, sk.Authenticator)
	k, err := libfido2.New(libfido2.Config{}).Open(context.Background(), platform.Device{Path: again.Path, Transport: platform.TransportUSB})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func apiPolicyDenying(model [16]byte) api.Policy {
	h := fmt.Sprintf("%x", model[:])
	return api.Policy{DeniedAAGUIDs: []string{h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]}}
}

// blockingKeys never yields a key until its context ends.
type blockingKeys struct{ asked chan struct{} }

func (b *blockingKeys) Next(ctx context.Context) (platform.Authenticator, error) {
	close(b.asked)
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestBatchRunsOncePerDirectory: a second run on a directory where one is
// under way is refused before it reads the journal.
func TestBatchRunsOncePerDirectory(t *testing.T) {
	e := newEnv(t, rptest.ServerOptions{})
	users := names(1)
	e.createUsers(t, users)
	dir := t.TempDir()
	ctx, stop := context.WithCancel(context.Background())
	first := &blockingKeys{asked: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := provision.RunBatch(ctx, e.batchConfig(t, dir, users, first, &said{}))
		done <- err
	}()
	<-first.asked
	_, err := provision.RunBatch(context.Background(), e.batchConfig(t, dir, users, &plugger{t: t}, &said{}))
	if !errors.Is(err, provision.ErrBatchRunning) {
		t.Fatalf("second run: %v, want ErrBatchRunning", err)
	}
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("first run: %v", err)
	}
	// Once the first run ended, the directory is free.
	sum, err := provision.RunBatch(context.Background(), e.batchConfig(t, dir, users, &plugger{t: t}, &said{}))
	if err != nil || sum.Enrolled != 1 {
		t.Fatalf("after: %+v, %v", sum, err)
	}
}

// busyOnce is a key another program has when it is first read.
type busyOnce struct {
	platform.Authenticator
	calls int
}

func (b *busyOnce) Describe(ctx context.Context) (*platform.Info, error) {
	b.calls++
	if b.calls == 1 {
		return nil, &platform.Error{Op: "read the key", Kind: platform.ErrDeviceBusy, RetriesLeft: -1}
	}
	return b.Authenticator.Describe(ctx)
}

// lateKey is a key whose first reads fail as if it were gone.
type lateKey struct {
	platform.Authenticator
	fails int
}

func (l *lateKey) Describe(ctx context.Context) (*platform.Info, error) {
	if l.fails > 0 {
		l.fails--
		return nil, &platform.Error{Op: "read the key", Kind: platform.ErrNoDevice, RetriesLeft: -1}
	}
	return l.Authenticator.Describe(ctx)
}
