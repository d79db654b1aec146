//go:build linux

package cli

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keydesk/keydesk/enroll/rpclient"
	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/softkey"
	"github.com/keydesk/keydesk/platform/softkey/softkeytest"
	"github.com/keydesk/keydesk/rp/api"
)

// provisionSetup signs root in as the admin of profile work (root's key is
// then unplugged), creates users, writes them to a CSV file and lists
// enough virtual key paths for the keys the test will plug in.
func provisionSetup(t *testing.T, users ...string) (rp *rpService, csvPath string) {
	t.Helper()
	accountTest(t, "work")
	rp = startRP(t)
	root := softkeytest.Serve(t, softkey.Config{})
	var paths []string
	for i := range 24 {
		paths = append(paths, fmt.Sprintf("%s%d", softkeytest.PathPrefix, i))
	}
	t.Setenv(platform.ExtraDevicesEnv, strings.Join(paths, ":"))
	signedInRoot(t, rp, root)
	root.Stop()
	admin, err := rpclient.New(rpclient.Config{BaseURL: rp.ts.URL, Token: storedToken(t, "work")})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if _, err := admin.CreateUser(context.Background(), api.CreateUserRequest{Name: u}); err != nil {
			t.Fatal(err)
		}
	}
	csvPath = filepath.Join(t.TempDir(), "users.csv")
	if err := os.WriteFile(csvPath, []byte("user,nickname\n"+strings.Join(users, ",Laptop key\n")+",Laptop key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := provisionPollInterval
	provisionPollInterval = 10 * time.Millisecond
	t.Cleanup(func() { provisionPollInterval = old })
	return rp, csvPath
}

// plugWhenAsked plugs in a new software key each time the run asks for one
// for the next of users[from:to], and unplugs each once it is done.
func plugWhenAsked(t *testing.T, s *started, users []string, from, to int) []*softkeytest.Key {
	t.Helper()
	var keys []*softkeytest.Key
	for i := from; i < to; i++ {
		u := users[i]
		s.waitStderr(t, "the request for "+u+"'s key", func(e string) bool {
			return strings.Contains(e, fmt.Sprintf("Insert a key for %s (%d of %d).", u, i+1, len(users)))
		})
		if len(keys) > 0 {
			prev := users[i-1]
			s.waitStderr(t, prev+" done", func(e string) bool { return strings.Contains(e, "Done: "+prev+"'s key") })
			keys[len(keys)-1].Stop()
			// The next key may get the same path: as a person would, let
			// the run see the key gone first.
			time.Sleep(5 * provisionPollInterval)
		}
		keys = append(keys, softkeytest.Serve(t, softkey.Config{}))
	}
	return keys
}

var pinOnPage = regexp.MustCompile(`PIN: (\S+)`)

// pagePIN reads the PIN on a handover page back with pdftotext.
func pagePIN(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("pdftotext", path, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext %s: %v (poppler-utils is installed by make deps)", path, err)
	}
	m := pinOnPage.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("%s: no PIN line", path)
	}
	return m[1]
}

// TestProvisionCommand runs keydesk provision for three users, keys
// plugged in one after another as it asks, and checks what it leaves:
// each user's key enrolled (the printed PIN opens it, and must be
// changed), the results without a PIN, and no PIN in its output.
func TestProvisionCommand(t *testing.T) {
	users := []string{"ann", "ben", "cat"}
	_, csvPath := provisionSetup(t, users...)
	dir := filepath.Join(t.TempDir(), "2026-11 laptops")
	s := start(t, context.Background(), strings.NewReader(""), "provision", "--csv", csvPath, "--out", dir, "--yes")
	keys := plugWhenAsked(t, s, users, 0, 3)
	r := s.wait(t)
	if r.code != 0 {
		t.Fatalf("exit %d: %v\nstdout: %s\nstderr: %s", r.code, r.err, r.stdout, r.stderr)
	}
	for _, want := range []string{"3 enrolled, 0 failed, 0 pending", "ann\tenrolled\tKeydesk Software Key (virtual)"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, want := range []string{`batch "2026-11 laptops"`, "[#######] 7/7", "Touch"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	results, err := os.ReadFile(filepath.Join(dir, "results.csv"))
	if err != nil {
		t.Fatal(err)
	}
	for i, u := range users {
		pin := pagePIN(t, filepath.Join(dir, "pins", u+".pdf"))
		for _, where := range []string{r.stdout, r.stderr, string(results)} {
			if strings.Contains(where, pin) {
				t.Errorf("%s's PIN was printed or written outside its page", u)
			}
		}
		// The key wants the printed PIN changed before anything else.
		// (Plugged in again: the keys shared paths.)
		keys[i].Stop()
		k := softkeytest.ServeAuthenticator(t, keys[i].Authenticator)
		out := mustRun(t, pin+"\nnew-"+u+"-pin\nnew-"+u+"-pin\n", "pin", "change", "--device", k.Path, "--pin-stdin")
		k.Stop()
		if !strings.Contains(out, "PIN changed") {
			t.Errorf("%s: pin change said %q", u, out)
		}
	}
	// A second run has nothing to do.
	again := run(t, "", "provision", "--csv", csvPath, "--out", dir)
	if again.code != 0 || !strings.Contains(again.stdout, "3 enrolled") {
		t.Fatalf("rerun: exit %d %v\n%s", again.code, again.err, again.stdout)
	}
}

// TestProvisionCommandStopsAndResumes: Ctrl-C mid-batch exits 5 and says
// how to resume; the same command then finishes without enrolling anyone
// twice.
func TestProvisionCommandStopsAndResumes(t *testing.T) {
	users := []string{"dan", "eve", "fay"}
	rp, csvPath := provisionSetup(t, users...)
	dir := filepath.Join(t.TempDir(), "batch")
	ctx, stop := context.WithCancel(context.Background())
	s := start(t, ctx, strings.NewReader(""), "provision", "--csv", csvPath, "--out", dir, "--yes")
	plugWhenAsked(t, s, users, 0, 2)
	s.waitStderr(t, "eve done", func(e string) bool { return strings.Contains(e, "Done: eve's key") })
	stop()
	r := s.wait(t)
	if r.code != ExitCancelled || !strings.Contains(r.stderr, "Run the same command again to resume") || !strings.Contains(r.stdout, "2 enrolled, 0 failed, 1 pending") {
		t.Fatalf("stopped run: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	s = start(t, context.Background(), strings.NewReader(""), "provision", "--csv", csvPath, "--out", dir, "--yes")
	plugWhenAsked(t, s, users, 2, 3)
	if r := s.wait(t); r.code != 0 || !strings.Contains(r.stdout, "3 enrolled") {
		t.Fatalf("resumed run: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	admin, _ := rpclient.New(rpclient.Config{BaseURL: rp.ts.URL, Token: storedToken(t, "work")})
	for _, u := range users {
		keys, err := admin.UserKeys(context.Background(), u)
		if err != nil || len(keys) != 1 {
			t.Errorf("%s has %d keys (%v), want 1", u, len(keys), err)
		}
	}
}
