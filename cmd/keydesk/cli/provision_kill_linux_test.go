//go:build linux

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keydesk/keydesk/enroll/provision"
	"github.com/keydesk/keydesk/enroll/provision/journal"
	"github.com/keydesk/keydesk/enroll/rpclient"
	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/softkey"
	"github.com/keydesk/keydesk/platform/softkey/softkeytest"
)

// childArgsEnv holds, as JSON, the arguments of a keydesk run that the
// test binary makes as a process of its own (see TestMain).
const childArgsEnv = "KEYDESK_TEST_CHILD_ARGS"

// runChild is keydesk in a child process: Run with the arguments of
// childArgsEnv, provision polling often so that the test is quick.
func runChild() int {
	var args []string
	if err := json.Unmarshal([]byte(os.Getenv(childArgsEnv)), &args); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	provisionPollInterval = 10 * time.Millisecond
	err := Run(context.Background(), args, os.Stdin, os.Stdout, os.Stderr)
	var ee *ExitError
	if errors.As(err, &ee) {
		fmt.Fprintln(os.Stderr, "keydesk:", ee.Err)
		return ee.Code
	}
	return 0
}

// newSoftkey is a software key, not yet served.
func newSoftkey(t *testing.T, cfg softkey.Config) *softkey.Authenticator {
	t.Helper()
	a, err := softkey.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestProvisionKilledMidBatchResumes kills keydesk provision (SIGKILL: no
// cleanup of any kind) while a user's key is enrolled but not yet handed
// over, then runs the same command again: the half-provisioned key is
// revoked and reported, the user gets a new key, and nobody has two.
func TestProvisionKilledMidBatchResumes(t *testing.T) {
	users := []string{"gus", "hal", "ivy"}
	rp, csvPath := provisionSetup(t, users...)
	dir := filepath.Join(t.TempDir(), "killed")
	args, _ := json.Marshal([]string{"provision", "--csv", csvPath, "--out", dir, "--yes"})
	// The child's environment is fixed when it starts: it is told now
	// where its two keys will be served, and sees each appear there.
	sockets := []string{softkeytest.SocketPath(t), softkeytest.SocketPath(t)}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childArgsEnv+"="+string(args),
		softkeytest.SocketEnv+"="+strings.Join(sockets, ":"),
		platform.ExtraDevicesEnv+"="+softkeytest.PathPrefix+"0:"+softkeytest.PathPrefix+"1")
	var stderr, stdout syncBuffer
	cmd.Stderr, cmd.Stdout = &stderr, &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	waitFor := func(what string, ok func(string) bool) {
		t.Helper()
		deadline := time.Now().Add(waitTimeout)
		for !ok(stderr.String()) {
			select {
			case err := <-exited:
				t.Fatalf("keydesk ended (%v) before %s\nstderr: %s", err, what, stderr.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s\nstderr: %s", what, stderr.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// gus goes through; hal's key holds the verifying sign-in's touch
	// (its second) until the process is dead.
	waitFor("the request for gus's key", func(e string) bool { return strings.Contains(e, "Insert a key for gus (1 of 3).") })
	gus := softkeytest.ServeAt(t, newSoftkey(t, softkey.Config{}), sockets[0])
	waitFor("gus done", func(e string) bool { return strings.Contains(e, "Done: gus's key") })
	gus.Stop()
	time.Sleep(50 * time.Millisecond)
	touches := 0
	held := make(chan struct{})
	hal := softkeytest.ServeAt(t, newSoftkey(t, softkey.Config{Presence: softkey.PresenceFunc(func(ctx context.Context) error {
		touches++
		if touches < 2 {
			return nil
		}
		close(held)
		<-ctx.Done()
		return ctx.Err()
	})}), sockets[1])
	select {
	case <-held:
	case <-time.After(waitTimeout):
		t.Fatalf("hal's key was never asked for its second touch\nstderr: %s", stderr.String())
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-exited
	hal.Stop()
	j, _, recs, err := journal.Open(filepath.Join(dir, provision.JournalFile), journal.Header{Batch: "killed", Service: accountOrigin})
	if err != nil {
		t.Fatalf("the killed run's journal: %v", err)
	}
	j.Close()
	if last := journal.Last(recs); last["gus"].Event != journal.Done || last["hal"].Event != journal.Enrolled {
		t.Fatalf("after the kill the journal says %+v", last)
	}
	halFirst := journal.Last(recs)["hal"].CredentialID

	time.Sleep(50 * time.Millisecond)
	s := start(t, context.Background(), strings.NewReader(""), "provision", "--csv", csvPath, "--out", dir, "--yes")
	plugWhenAsked(t, s, users, 1, 3)
	r := s.wait(t)
	if r.code != 0 || !strings.Contains(r.stdout, "3 enrolled, 0 failed, 0 pending; 1 interrupted keys revoked.") {
		t.Fatalf("resumed run: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	results, err := os.ReadFile(filepath.Join(dir, provision.ResultsFile))
	if err != nil || !strings.Contains(string(results), "interrupted attempt's key "+halFirst+" was revoked") {
		t.Errorf("results do not report hal's revoked key %s:\n%s", halFirst, results)
	}
	admin, _ := rpclient.New(rpclient.Config{BaseURL: rp.ts.URL, Token: storedToken(t, "work")})
	for _, u := range users {
		keys, err := admin.UserKeys(context.Background(), u)
		if err != nil {
			t.Fatal(err)
		}
		active := 0
		for _, k := range keys {
			if k.RevokedAt == nil {
				active++
			} else if u != "hal" || k.ID != halFirst || k.RevokeReason != "provisioning interrupted" {
				t.Errorf("%s: revoked key %+v", u, k)
			}
		}
		if active != 1 {
			t.Errorf("%s has %d usable keys, want 1", u, active)
		}
	}
}
