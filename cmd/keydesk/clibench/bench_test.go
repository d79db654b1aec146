package clibench

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/softkey"
	"github.com/keydesk/keydesk/platform/softkey/softkeytest"
)

func TestMain(m *testing.M) { os.Exit(softkeytest.Preload(m)) }

var (
	buildMu sync.Mutex
	// builds are the binaries built, by build tags.
	builds = map[string]string{}
)

// keydeskBinary builds cmd/keydesk with tags once, as a user would run
// it: "no_emoji" is the program as make builds and packages it (commands
// and the desktop app, the Makefile's APP_TAGS), "nogui" the commands
// alone.
func keydeskBinary(b *testing.B, tags string) string {
	b.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if bin, ok := builds[tags]; ok {
		return bin
	}
	dir := b.TempDir()
	_, self, _, _ := runtime.Caller(0)
	bin := filepath.Join(dir, "keydesk")
	out, err := exec.Command("go", "build", "-tags", tags, "-o", bin, filepath.Join(filepath.Dir(self), "..")).CombinedOutput()
	if err != nil {
		b.Fatalf("build keydesk (tags %q): %v\n%s", tags, err, out)
	}
	builds[tags] = bin
	return bin
}

// run runs a command with stdin, in its own session (so fido2-token reads
// the PIN from stdin), and fails the benchmark if it fails.
func run(b *testing.B, stdin string, env []string, name string, args ...string) string {
	b.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		b.Fatalf("%s %v: %v\n%s", name, args, err, out.String())
	}
	return out.String()
}

// BenchmarkCommandsAgainstFido2Token runs each pair in one loop, so the
// ratio comes from one run. fido2-token -L cannot see a virtual key (udev
// does not list it), so keydesk devices, which lists keys and reads each
// one's getInfo, is set against fido2-token -L followed by fido2-token -I
// on the key: the same work.
func BenchmarkCommandsAgainstFido2Token(b *testing.B) {
	for _, v := range []struct{ name, tags string }{{"shipped", "no_emoji"}, {"nogui", "nogui"}} {
		b.Run(v.name, func(b *testing.B) { benchCommands(b, keydeskBinary(b, v.tags)) })
	}
}

// benchCommands runs each pair for the keydesk at bin.
func benchCommands(b *testing.B, bin string) {
	k := softkeytest.Serve(b, softkey.Config{})
	env := []string{platform.ExtraDevicesEnv + "=" + k.Path, platform.ConfigEnv + "=/nonexistent/config.json"}
	run(b, "1234\n1234\n", nil, "fido2-token", "-S", k.Path)
	dir := b.TempDir()
	for _, user := range []string{"alice", "bob"} {
		params := filepath.Join(dir, user)
		cdh := make([]byte, 32)
		rand.Read(cdh)
		os.WriteFile(params, []byte(base64.StdEncoding.EncodeToString(cdh)+"\nexample.com\n"+user+"\n"+base64.StdEncoding.EncodeToString([]byte(user))+"\n"), 0o600)
		run(b, "1234\n", nil, "fido2-cred", "-M", "-r", "-i", params, k.Path)
	}

	const aliceUserID = "YWxpY2U=" // as fido2-token -L -k prints it
	credsList := func() {
		if out := run(b, "1234\n", env, bin, "creds", "list", "--json", "--pin-stdin", "--device", k.Path); !strings.Contains(out, "alice") || !strings.Contains(out, "bob") {
			b.Fatalf("creds list: %s", out)
		}
	}
	pairs := []struct {
		name     string
		keydesk  func()
		fido2tok func()
	}{
		{"devices", func() {
			if out := run(b, "", env, bin, "devices", "--json"); !strings.Contains(out, k.Path) {
				b.Fatalf("devices: %s", out)
			}
		}, func() {
			run(b, "", nil, "fido2-token", "-L")
			run(b, "", nil, "fido2-token", "-I", k.Path)
		}},
		// The floor: starting the process and doing nothing with a key
		// (a Go program with cgo against a C one), which every other pair
		// pays once per process.
		{"process-start", func() { run(b, "", env, bin, "help") }, func() { run(b, "", nil, "fido2-token", "-V") }},
		{"creds-list", credsList, func() {
			if out := run(b, "1234\n", nil, "fido2-token", "-L", "-r", k.Path); !strings.Contains(out, "example.com") {
				b.Fatalf("fido2-token -L -r: %s", out)
			}
		}},
		// keydesk creds list prints every credential of every RP, which
		// fido2-token -L -r does not: it lists the RPs only. For the same
		// output fido2-token needs -L -k for each RP as well.
		{"creds-list-same-output", credsList, func() {
			run(b, "1234\n", nil, "fido2-token", "-L", "-r", k.Path)
			if out := run(b, "1234\n", nil, "fido2-token", "-L", "-k", "example.com", k.Path); !strings.Contains(out, aliceUserID) {
				b.Fatalf("fido2-token -L -k: %s", out)
			}
		}},
	}
	for _, p := range pairs {
		b.Run(p.name, func(b *testing.B) {
			var kd, ft time.Duration
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				p.keydesk()
				t1 := time.Now()
				p.fido2tok()
				ft += time.Since(t1)
				kd += t1.Sub(t0)
			}
			n := float64(b.N)
			b.ReportMetric(kd.Seconds()*1000/n, "keydesk-ms/op")
			b.ReportMetric(ft.Seconds()*1000/n, "fido2-token-ms/op")
			b.ReportMetric(float64(kd)/float64(ft), "keydesk/fido2-token")
		})
	}
}
