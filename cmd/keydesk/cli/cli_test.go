package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/softkey"
	"github.com/keydesk/keydesk/platform/softkey/softkeytest"
)

// result is one in-process run of keydesk.
type result struct {
	stdout, stderr string
	code           int
	err            error
}

// run runs keydesk with args, stdin as standard input.
func run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	err := Run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return resultOf(t, args, out.String(), errb.String(), err)
}

func resultOf(t *testing.T, args []string, stdout, stderr string, err error) result {
	t.Helper()
	r := result{stdout: stdout, stderr: stderr, err: err}
	if err != nil {
		var ee *ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("keydesk %v: error %v is not an *ExitError", args, err)
		}
		r.code = ee.Code
	}
	return r
}

// syncBuffer is a buffer a command writes to while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// started is a run of keydesk in the background.
type started struct {
	args           []string
	stdout, stderr syncBuffer
	done           chan error
}

// start runs keydesk with args in the background; the run is cancelled
// when the test ends.
func start(t *testing.T, ctx context.Context, stdin io.Reader, args ...string) *started {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	s := &started{args: args, done: make(chan error, 1)}
	go func() { s.done <- Run(ctx, args, stdin, &s.stdout, &s.stderr) }()
	return s
}

// waitTimeout bounds every wait for a background run, so that a hang
// fails the test instead of blocking it.
const waitTimeout = 20 * time.Second

// wait waits for the run to end.
func (s *started) wait(t *testing.T) result {
	t.Helper()
	select {
	case err := <-s.done:
		return resultOf(t, s.args, s.stdout.String(), s.stderr.String(), err)
	case <-time.After(waitTimeout):
		t.Fatalf("keydesk %v did not end\nstderr: %s", s.args, s.stderr.String())
		return result{}
	}
}

// waitStderr waits until what the run printed on stderr satisfies ok.
func (s *started) waitStderr(t *testing.T, what string, ok func(stderr string) bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !ok(s.stderr.String()) {
		select {
		case err := <-s.done:
			s.done <- err
			t.Fatalf("keydesk %v ended (%v) before %s\nstderr: %s", s.args, err, what, s.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("keydesk %v: no %s\nstderr: %s", s.args, what, s.stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// mustRun is run that fails the test on an error.
func mustRun(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	r := run(t, stdin, args...)
	if r.err != nil {
		t.Fatalf("keydesk %v: exit %d: %v\nstdout: %s\nstderr: %s", args, r.code, r.err, r.stdout, r.stderr)
	}
	return r.stdout
}

// serveKeys serves n software keys and lists them in $KEYDESK_EXTRA_DEVICES.
func serveKeys(t *testing.T, n int) []*softkeytest.Key {
	t.Helper()
	var keys []*softkeytest.Key
	var paths []string
	for range n {
		k := softkeytest.Serve(t, softkey.Config{})
		keys = append(keys, k)
		paths = append(paths, k.Path)
	}
	t.Setenv(platform.ExtraDevicesEnv, strings.Join(paths, ":"))
	return keys
}

const (
	softkeyAAGUID = "ef185f030d9a49098ff093c535aa9ecd"
	softkeyModel  = "Keydesk Software Key (virtual)"
)

func TestDevices(t *testing.T) {
	tests := []struct {
		name  string
		keys  int
		extra string // appended to $KEYDESK_EXTRA_DEVICES
		args  []string
		check func(t *testing.T, keys []*softkeytest.Key, out string)
	}{
		{
			name: "ShouldListConfiguredKeyAsText", keys: 1, extra: ":/dev/keydesk-vhid99", args: []string{"devices"},
			check: func(t *testing.T, keys []*softkeytest.Key, out string) {
				// The absent configured path is not listed: there is no key behind it.
				lines := strings.Split(strings.TrimSpace(out), "\n")
				if len(lines) != 1 {
					t.Fatalf("want 1 line:\n%s", out)
				}
				if !strings.HasPrefix(lines[0], "0\t"+keys[0].Path+"\tUSB\tKeydesk Software Key") ||
					!strings.Contains(lines[0], "FIDO_2_0,FIDO_2_1") || !strings.Contains(lines[0], softkeyAAGUID) ||
					!strings.HasSuffix(lines[0], "\tno PIN") {
					t.Errorf("software key line: %q", lines[0])
				}
			},
		},
		{
			name: "ShouldBeTheDefaultCommand", keys: 1,
			check: func(t *testing.T, keys []*softkeytest.Key, out string) {
				if !strings.HasPrefix(out, "0\t"+keys[0].Path+"\t") {
					t.Errorf("output:\n%s", out)
				}
			},
		},
		{
			name: "ShouldListKeysAsJSON", keys: 2, args: []string{"devices", "--json"},
			check: func(t *testing.T, keys []*softkeytest.Key, out string) {
				var got devicesJSON
				if err := json.Unmarshal([]byte(out), &got); err != nil {
					t.Fatalf("%v\n%s", err, out)
				}
				if len(got.Devices) != 2 || got.VirtualKeyOffered {
					t.Fatalf("devices: %+v", got)
				}
				for i, d := range got.Devices {
					if d.Index != i || d.Path != keys[i].Path || d.Transport != "usb" || d.Model != softkeyModel ||
						d.AAGUID != softkeyAAGUID || !slices.Contains(d.Versions, "FIDO_2_1") || d.PINSet || d.Error != "" {
						t.Errorf("device %d: %+v", i, d)
					}
				}
			},
		},
		{
			name: "ShouldOfferLabelledVirtualKeyWhenNoKeyIsFound", args: []string{"devices"},
			check: func(t *testing.T, _ []*softkeytest.Key, out string) {
				if !strings.Contains(out, "No hardware security key found") || !strings.Contains(out, "(in-process)\tvirtual\tKeydesk virtual key (software") {
					t.Fatalf("output:\n%s", out)
				}
			},
		},
		{
			name: "ShouldReturnEmptyJSONListWhenNoKeyIsFound", args: []string{"devices", "--json"},
			check: func(t *testing.T, _ []*softkeytest.Key, out string) {
				var raw map[string]json.RawMessage
				if err := json.Unmarshal([]byte(out), &raw); err != nil {
					t.Fatalf("%v\n%s", err, out)
				}
				if string(raw["devices"]) != "[]" || string(raw["virtualKeyOffered"]) != "true" {
					t.Fatalf("output:\n%s", out)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys := serveKeys(t, tt.keys)
			t.Setenv(platform.ExtraDevicesEnv, os.Getenv(platform.ExtraDevicesEnv)+tt.extra)
			tt.check(t, keys, mustRun(t, "", tt.args...))
		})
	}
}

func TestInfo(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, k *softkeytest.Key, out string)
	}{
		{
			name: "ShouldReportFreshKeyAsJSON", args: []string{"info", "--json"},
			check: func(t *testing.T, k *softkeytest.Key, out string) {
				var got infoJSON
				if err := json.Unmarshal([]byte(out), &got); err != nil {
					t.Fatalf("%v\n%s", err, out)
				}
				if got.Path != k.Path || got.Model != softkeyModel || got.AAGUID != softkeyAAGUID ||
					!slices.Contains(got.Versions, "FIDO_2_1") || got.PINRetries != 8 || got.MinPINLength != 4 ||
					got.PINSet || got.ForcePINChange || !got.Options["rk"] || got.RemainingDiscoverableCredentials != 25 ||
					!slices.Contains(got.Extensions, "credProtect") || !slices.Contains(got.Algorithms, -7) ||
					got.EnterpriseAttestation == "" {
					t.Errorf("info: %+v", got)
				}
			},
		},
		{
			name: "ShouldAcceptDeviceIndexAndPrintText", args: []string{"info", "--device", "0"},
			check: func(t *testing.T, k *softkeytest.Key, out string) {
				for _, want := range []string{"path: " + k.Path + " (USB)", "model: Keydesk Software Key", "PIN retries: 8",
					"minimum PIN length: 4", "PIN set: no", "algorithms: ES256, EdDSA"} {
					if !strings.Contains(out, want) {
						t.Errorf("no %q in:\n%s", want, out)
					}
				}
			},
		},
		{
			name: "ShouldAcceptDevicePath", args: nil, // --device path added below
			check: func(t *testing.T, k *softkeytest.Key, out string) {
				if !strings.Contains(out, `"path": "`+k.Path+`"`) {
					t.Errorf("output:\n%s", out)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := serveKeys(t, 1)[0]
			args := tt.args
			if args == nil {
				args = []string{"info", "--json", "--device", k.Path}
			}
			tt.check(t, k, mustRun(t, "", args...))
		})
	}
}

func TestPIN(t *testing.T) {
	tests := []struct {
		name     string
		setFirst string // a PIN set with fido2-token before the run
		args     []string
		stdin    string
		wantCode int
		wantMsg  string // in the error's message
		check    func(t *testing.T, k *softkeytest.Key)
	}{
		{
			name: "ShouldSetPINFromStdin", args: []string{"pin", "set", "--pin-stdin"}, stdin: "1234\n1234\n",
			check: func(t *testing.T, k *softkeytest.Key) {
				out := mustTool(t, "", "fido2-token", "-I", k.Path)
				if got := infoLine(t, out, "pin retries"); got != "8" {
					t.Errorf("pin retries %q", got)
				}
				if !slices.Contains(strings.Split(infoLine(t, out, "options"), ", "), "clientPin") {
					t.Errorf("no clientPin option:\n%s", out)
				}
			},
		},
		{
			name: "ShouldRefuseTooShortPIN", args: []string{"pin", "set", "--pin-stdin"}, stdin: "12\n12\n",
			wantCode: ExitPIN, wantMsg: "This key needs at least 4 characters; the PIN has 2.",
		},
		{
			name: "ShouldRefuseMismatchedNewPINs", args: []string{"pin", "set", "--pin-stdin"}, stdin: "1234\n1235\n",
			wantCode: ExitPIN, wantMsg: "the new PINs do not match",
			check: func(t *testing.T, k *softkeytest.Key) {
				if out := mustTool(t, "", "fido2-token", "-I", k.Path); !strings.Contains(infoLine(t, out, "options"), "noclientPin") {
					t.Errorf("a PIN was set:\n%s", out)
				}
			},
		},
		{
			name: "ShouldRefuseSettingASecondPIN", setFirst: "1234", args: []string{"pin", "set", "--pin-stdin"}, stdin: "5678\n5678\n",
			wantCode: ExitOther,
		},
		{
			name: "ShouldChangePIN", setFirst: "1234", args: []string{"pin", "change", "--pin-stdin"}, stdin: "1234\n5678\n5678\n",
			check: func(t *testing.T, k *softkeytest.Key) {
				out := mustTool(t, "5678\n", "fido2-token", "-I", "-c", k.Path)
				if !strings.Contains(out, "existing rk(s): 0") {
					t.Errorf("the new PIN does not work:\n%s", out)
				}
			},
		},
		{
			name: "ShouldReportWrongOldPINWithAttemptsLeft", setFirst: "1234", args: []string{"pin", "change", "--pin-stdin"}, stdin: "0000\n5678\n5678\n",
			wantCode: ExitPIN, wantMsg: "Wrong PIN. 7 attempts left",
		},
		{
			name: "ShouldRefuseChangeWithoutPIN", args: []string{"pin", "change", "--pin-stdin"}, stdin: "1234\n5678\n5678\n",
			wantCode: ExitPIN, wantMsg: "has no PIN yet",
		},
		{
			name: "ShouldRefuseEndOfInputBeforeThePIN", args: []string{"pin", "set", "--pin-stdin"}, stdin: "1234\n",
			wantCode: ExitUsage, wantMsg: "standard input ended",
		},
		{
			name: "ShouldRefusePINOnTheCommandLine", args: []string{"pin", "set", "--pin-stdin", "1234"},
			wantCode: ExitUsage,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := serveKeys(t, 1)[0]
			if tt.setFirst != "" {
				mustTool(t, tt.setFirst+"\n"+tt.setFirst+"\n", "fido2-token", "-S", k.Path)
			}
			r := run(t, tt.stdin, tt.args...)
			if r.code != tt.wantCode {
				t.Fatalf("exit %d, want %d: %v\nstderr: %s", r.code, tt.wantCode, r.err, r.stderr)
			}
			if tt.wantMsg != "" && (r.err == nil || !strings.Contains(r.err.Error(), tt.wantMsg)) {
				t.Errorf("error %v, want %q", r.err, tt.wantMsg)
			}
			if strings.Contains(r.stdout+r.stderr, "1234") || strings.Contains(r.stdout+r.stderr, "5678") {
				t.Errorf("a PIN was printed:\n%s\n%s", r.stdout, r.stderr)
			}
			if tt.check != nil {
				tt.check(t, k)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name     string
		keys     int
		args     []string
		wantCode int
		wantMsg  string
	}{
		{name: "ShouldRejectDeviceIndexOutOfRange", keys: 1, args: []string{"info", "--device", "1"}, wantCode: ExitUsage, wantMsg: "out of range"},
		{name: "ShouldRejectNegativeDeviceIndex", keys: 1, args: []string{"info", "--device", "-1"}, wantCode: ExitUsage},
		{name: "ShouldReportNoKey", args: []string{"info"}, wantCode: ExitNoKey, wantMsg: "No security key found"},
		{name: "ShouldReportNoKeyForDeviceIndex", args: []string{"info", "--device", "0"}, wantCode: ExitNoKey},
		{name: "ShouldReportNoKeyForPIN", args: []string{"pin", "set", "--pin-stdin"}, wantCode: ExitNoKey},
		{name: "ShouldRejectUnknownCommand", args: []string{"frobnicate"}, wantCode: ExitUsage},
		{name: "ShouldRejectUnknownSubcommand", args: []string{"pin", "frobnicate"}, wantCode: ExitUsage},
		{name: "ShouldRejectUnknownFlag", args: []string{"devices", "--frobnicate"}, wantCode: ExitUsage},
		{name: "ShouldRejectArguments", args: []string{"info", "extra"}, wantCode: ExitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			serveKeys(t, tt.keys)
			r := run(t, "", tt.args...)
			if r.code != tt.wantCode {
				t.Fatalf("exit %d, want %d: %v\nstderr: %s", r.code, tt.wantCode, r.err, r.stderr)
			}
			if tt.wantMsg != "" && !strings.Contains(r.err.Error(), tt.wantMsg) {
				t.Errorf("error %v, want %q", r.err, tt.wantMsg)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"info", "-h"}} {
		r := run(t, "", args...)
		if r.err != nil || !strings.Contains(r.stdout+r.stderr, "exit codes:") {
			t.Errorf("keydesk %v: %v\n%s%s", args, r.err, r.stdout, r.stderr)
		}
	}
}

// writeParams writes a fido2-cred input file, one item a line.
func writeParams(t *testing.T, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "params")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// makeCredential makes a discoverable credential for rpID with fido2-cred
// and returns its ID in standard base64, as fido2-tools print it.
func makeCredential(t *testing.T, k *softkeytest.Key, pin, rpID, user string) string {
	t.Helper()
	cdh := make([]byte, 32)
	rand.Read(cdh)
	userID := base64.StdEncoding.EncodeToString([]byte(user + "-handle"))
	out := mustTool(t, pin+"\n", "fido2-cred", "-M", "-r", "-i",
		writeParams(t, base64.StdEncoding.EncodeToString(cdh), rpID, user, userID), k.Path)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 5 {
		t.Fatalf("fido2-cred -M output:\n%s", out)
	}
	return lines[4]
}

// toURL turns standard base64 into base64url without padding.
func toURL(t *testing.T, std string) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(std)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestCreds(t *testing.T) {
	tests := []struct {
		name  string
		check func(t *testing.T, k *softkeytest.Key, alice, bob string)
	}{
		{
			name: "ShouldListCredentialsAsJSON",
			check: func(t *testing.T, k *softkeytest.Key, alice, bob string) {
				var got credentialsJSON
				out := mustRun(t, "1234\n", "creds", "list", "--pin-stdin", "--json")
				if err := json.Unmarshal([]byte(out), &got); err != nil {
					t.Fatalf("%v\n%s", err, out)
				}
				byID := map[string]credentialJSON{}
				for _, c := range got.Credentials {
					byID[c.ID] = c
				}
				a, ok := byID[toURL(t, alice)]
				if len(got.Credentials) != 2 || !ok || a.RPID != "example.com" || a.UserName != "alice" ||
					a.UserID != base64.RawURLEncoding.EncodeToString([]byte("alice-handle")) {
					t.Fatalf("credentials:\n%s", out)
				}
				if b, ok := byID[toURL(t, bob)]; !ok || b.RPID != "example.org" || b.UserName != "bob" {
					t.Fatalf("credentials:\n%s", out)
				}
			},
		},
		{
			name: "ShouldListCredentialsAsText",
			check: func(t *testing.T, k *softkeytest.Key, alice, bob string) {
				out := mustRun(t, "1234\n", "creds", "list", "--pin-stdin")
				if !strings.Contains(out, "example.com\t"+toURL(t, alice)+"\talice") || !strings.Contains(out, "example.org\t"+toURL(t, bob)+"\tbob") {
					t.Fatalf("output:\n%s", out)
				}
			},
		},
		{
			name: "ShouldDeleteCredential",
			check: func(t *testing.T, k *softkeytest.Key, alice, bob string) {
				// "--": a random ID may start with "-".
				mustRun(t, "1234\n", "creds", "delete", "--pin-stdin", "--", toURL(t, alice))
				// Its RP had only it: fido2-token finds nothing for the RP.
				out, errOut, err := tool(t, "1234\n", "fido2-token", "-L", "-k", "example.com", k.Path)
				if strings.Contains(out, alice) || (err != nil && !strings.Contains(errOut, "FIDO_ERR_NO_CREDENTIALS")) {
					t.Fatalf("fido2-token -L -k: %v\n%s%s", err, out, errOut)
				}
				if out := mustTool(t, "1234\n", "fido2-token", "-L", "-k", "example.org", k.Path); !strings.Contains(out, bob) {
					t.Fatalf("the other credential went too:\n%s", out)
				}
			},
		},
		{
			name: "ShouldReportWrongPINWhenListing",
			check: func(t *testing.T, k *softkeytest.Key, alice, bob string) {
				r := run(t, "0000\n", "creds", "list", "--pin-stdin")
				if r.code != ExitPIN || !strings.Contains(r.err.Error(), "Wrong PIN. 7 attempts left") {
					t.Fatalf("exit %d: %v", r.code, r.err)
				}
			},
		},
		{
			name: "ShouldRejectBadCredentialID",
			check: func(t *testing.T, k *softkeytest.Key, alice, bob string) {
				if r := run(t, "1234\n", "creds", "delete", "--pin-stdin", "not*base64"); r.code != ExitUsage {
					t.Fatalf("exit %d: %v", r.code, r.err)
				}
			},
		},
		{
			name: "ShouldReportUnknownCredential",
			check: func(t *testing.T, k *softkeytest.Key, alice, bob string) {
				r := run(t, "1234\n", "creds", "delete", "--pin-stdin", "AAAA")
				if r.code != ExitOther || !strings.Contains(r.err.Error(), "no matching credential") {
					t.Fatalf("exit %d: %v", r.code, r.err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := serveKeys(t, 1)[0]
			mustTool(t, "1234\n1234\n", "fido2-token", "-S", k.Path)
			alice := makeCredential(t, k, "1234", "example.com", "alice")
			bob := makeCredential(t, k, "1234", "example.org", "bob")
			tt.check(t, k, alice, bob)
		})
	}
}

// residentKey is one line of "fido2-token -L -k RPID": the credential ID
// and user ID in standard base64, and the display name, "(null)" when
// there is none. fido2-token does not print the user name.
type residentKey struct{ id, displayName, userID string }

func residentKeys(t *testing.T, k *softkeytest.Key, rpID string) []residentKey {
	t.Helper()
	out := mustTool(t, "1234\n", "fido2-token", "-L", "-k", rpID, k.Path)
	var rks []residentKey
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		// "00: ID DISPLAY NAME USERID TYPE PROTECTION"
		f := strings.Fields(line)
		if len(f) < 6 {
			t.Fatalf("fido2-token -L -k %s:\n%s", rpID, out)
		}
		rks = append(rks, residentKey{id: f[1], displayName: strings.Join(f[2:len(f)-3], " "), userID: f[len(f)-3]})
	}
	return rks
}

func TestCredsUpdate(t *testing.T) {
	aliceID := base64.StdEncoding.EncodeToString([]byte("alice-handle"))
	tests := []struct {
		name            string
		before          [][]string // creds update flags run first
		flags           []string   // creds update flags; the ID is added after them
		id              string     // the ID given; alice's when empty
		stdin           string     // the PIN; "1234\n" when empty
		wantCode        int
		wantMsg         string
		wantName        string // alice's user name afterwards
		wantDisplayName string // and display name, as fido2-token prints it
		likeDelete      bool   // fails as "creds delete" of the same ID does
	}{
		{
			name: "ShouldUpdateDisplayNameOnly", flags: []string{"--display-name", "Alice Liddell"},
			wantName: "alice", wantDisplayName: "Alice Liddell",
		},
		{
			name: "ShouldUpdateNameOnlyAndKeepTheDisplayName", before: [][]string{{"--display-name", "Alice"}},
			flags: []string{"--name", "alice@example.com"}, wantName: "alice@example.com", wantDisplayName: "Alice",
		},
		{
			name: "ShouldUpdateBothNames", flags: []string{"--name", "liddell", "--display-name", "A. Liddell"},
			wantName: "liddell", wantDisplayName: "A. Liddell",
		},
		{
			name: "ShouldRemoveTheDisplayNameGivenEmpty", before: [][]string{{"--display-name", "Alice"}},
			flags: []string{"--display-name", ""}, wantName: "alice", wantDisplayName: "(null)",
		},
		{
			name: "ShouldRequireANameFlag", wantCode: ExitUsage, wantMsg: "give --name, --display-name or both",
			wantName: "alice", wantDisplayName: "(null)",
		},
		{
			name: "ShouldRejectBadCredentialID", flags: []string{"--name", "mallory"}, id: "not*base64",
			wantCode: ExitUsage, wantMsg: "not base64url", wantName: "alice", wantDisplayName: "(null)",
		},
		{
			name: "ShouldReportUnknownCredentialAsDeleteDoes", flags: []string{"--name", "mallory"}, id: "AAAA",
			wantCode: ExitOther, wantMsg: "no matching credential", wantName: "alice", wantDisplayName: "(null)",
			likeDelete: true,
		},
		{
			name: "ShouldReportWrongPIN", flags: []string{"--name", "mallory"}, stdin: "0000\n",
			wantCode: ExitPIN, wantMsg: "Wrong PIN. 7 attempts left", wantName: "alice", wantDisplayName: "(null)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := serveKeys(t, 1)[0]
			mustTool(t, "1234\n1234\n", "fido2-token", "-S", k.Path)
			alice := makeCredential(t, k, "1234", "example.com", "alice")
			bob := makeCredential(t, k, "1234", "example.com", "bob")
			for _, flags := range tt.before {
				mustRun(t, "1234\n", append([]string{"creds", "update", "--pin-stdin"}, append(flags, "--", toURL(t, alice))...)...)
			}
			id, stdin := tt.id, tt.stdin
			if id == "" {
				id = toURL(t, alice)
			}
			if stdin == "" {
				stdin = "1234\n"
			}
			// "--": a random ID may start with "-".
			r := run(t, stdin, append([]string{"creds", "update", "--pin-stdin"}, append(tt.flags, "--", id)...)...)
			if r.code != tt.wantCode {
				t.Fatalf("exit %d, want %d: %v\nstderr: %s", r.code, tt.wantCode, r.err, r.stderr)
			}
			if tt.wantMsg != "" && !strings.Contains(r.err.Error(), tt.wantMsg) {
				t.Errorf("error %v, want %q", r.err, tt.wantMsg)
			}
			if tt.likeDelete {
				if d := run(t, stdin, "creds", "delete", "--pin-stdin", "--", id); d.code != r.code || d.err.Error() != r.err.Error() {
					t.Errorf("creds delete: exit %d: %v; creds update: exit %d: %v", d.code, d.err, r.code, r.err)
				}
			}
			if tt.wantCode == ExitOK && strings.TrimSpace(r.stdout) != "Credential updated." {
				t.Errorf("stdout %q", r.stdout)
			}
			// fido2-token sees the display name, and the user IDs unchanged.
			rks := map[string]residentKey{}
			for _, rk := range residentKeys(t, k, "example.com") {
				rks[rk.id] = rk
			}
			if got := rks[alice]; got.displayName != tt.wantDisplayName || got.userID != aliceID {
				t.Errorf("fido2-token sees alice as %+v, want display name %q and user ID %s", got, tt.wantDisplayName, aliceID)
			}
			wantBob := residentKey{id: bob, displayName: "(null)", userID: base64.StdEncoding.EncodeToString([]byte("bob-handle"))}
			if got := rks[bob]; got != wantBob {
				t.Errorf("bob changed: %+v", got)
			}
			// The user name only keydesk's list shows.
			var got credentialsJSON
			out := mustRun(t, "1234\n", "creds", "list", "--pin-stdin", "--json")
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			for _, c := range got.Credentials {
				if c.ID == toURL(t, alice) && c.UserName != tt.wantName {
					t.Errorf("alice's user name %q, want %q", c.UserName, tt.wantName)
				}
				if c.ID == toURL(t, bob) && c.UserName != "bob" {
					t.Errorf("bob's user name %q", c.UserName)
				}
			}
		})
	}
}

func TestSelectAmongSeveralKeys(t *testing.T) {
	untouched := softkey.PresenceFunc(func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	tests := []struct {
		name     string
		presence []softkey.Presence
		wantCode int
		wantKey  int // index of the key chosen
	}{
		{name: "ShouldUseTheTouchedKey", presence: []softkey.Presence{untouched, softkey.ApproveAlways}, wantKey: 1},
		{name: "ShouldExitCancelledWhenEveryKeyRefuses", presence: []softkey.Presence{softkey.DenyAlways, softkey.DenyAlways}, wantCode: ExitCancelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var paths []string
			for _, p := range tt.presence {
				paths = append(paths, softkeytest.Serve(t, softkey.Config{Presence: p}).Path)
			}
			t.Setenv(platform.ExtraDevicesEnv, strings.Join(paths, ":"))
			r := run(t, "", "info", "--json")
			if r.code != tt.wantCode {
				t.Fatalf("exit %d, want %d: %v", r.code, tt.wantCode, r.err)
			}
			if !strings.Contains(r.stderr, "Touch the key you want to use") {
				t.Errorf("stderr: %q", r.stderr)
			}
			if tt.wantCode == 0 && !strings.Contains(r.stdout, `"path": "`+paths[tt.wantKey]+`"`) {
				t.Errorf("chose the wrong key:\n%s", r.stdout)
			}
		})
	}
}

// The fido2-tools runners shared with the other tests.
var (
	tool     = softkeytest.Tool
	mustTool = softkeytest.MustTool
	infoLine = softkeytest.InfoLine
)

func TestMayWait(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want bool
	}{
		{nil, false},
		{[]string{"--json"}, false},
		{[]string{"devices", "--json"}, false},
		{[]string{"info"}, false},
		{[]string{"help"}, false},
		{[]string{"pin", "set"}, true},
		{[]string{"creds", "list"}, true},
		{[]string{"reset", "--yes"}, true},
		{[]string{"fingerprints", "add"}, true},
		{[]string{"config", "always-uv"}, true},
		{[]string{"profiles", "add"}, false},
		{[]string{"login"}, true},
		{[]string{"logout"}, true},
		{[]string{"keys", "list"}, true},
		{[]string{"keys", "revoke"}, true},
		{[]string{"no-such-command"}, true},
	} {
		if got := MayWait(tt.args); got != tt.want {
			t.Errorf("MayWait(%q) = %v, want %v", tt.args, got, tt.want)
		}
	}
}
