package stacktest

import (
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/keydesk/keydesk/platform/softkey"
	"github.com/keydesk/keydesk/platform/softkey/softkeytest"
)

func hasWord(list, word string) bool {
	for _, w := range strings.Split(list, ", ") {
		if w == word {
			return true
		}
	}
	return false
}

func TestFido2TokenInfo(t *testing.T) {
	k := softkeytest.Serve(t, softkey.Config{})
	out := mustTool(t, "", "fido2-token", "-I", k.Path)
	if v := infoLine(t, out, "version strings"); v != "U2F_V2, FIDO_2_0, FIDO_2_1" {
		t.Errorf("versions %q", v)
	}
	opts := infoLine(t, out, "options")
	for _, want := range []string{"rk", "up", "noclientPin", "credMgmt", "authnrCfg", "pinUvAuthToken", "setMinPINLength", "makeCredUvNotRqd", "noalwaysUv"} {
		if !hasWord(opts, want) {
			t.Errorf("option %s missing from %q", want, opts)
		}
	}
	if v := infoLine(t, out, "aaguid"); v != "ef185f030d9a49098ff093c535aa9ecd" {
		t.Errorf("aaguid %q", v)
	}
	checks := map[string]string{
		"extension strings": "credProtect, hmac-secret, minPinLength",
		"algorithms":        "es256 (public-key), eddsa (public-key)",
		"pin protocols":     "2, 1",
		"maxmsgsiz":         "7609",
		"minpinlen":         "4",
		"remaining rk(s)":   "25",
		"pin retries":       "8",
		"caps":              "0x05 (wink, cbor, msg)", // CTAPHID_MSG carries U2F
	}
	for label, want := range checks {
		if got := infoLine(t, out, label); got != want {
			t.Errorf("%s: %q, want %q", label, got, want)
		}
	}
}

func TestFido2TokenPIN(t *testing.T) {
	k := softkeytest.Serve(t, softkey.Config{})
	mustTool(t, "1234\n1234\n", "fido2-token", "-S", k.Path)
	out := mustTool(t, "", "fido2-token", "-I", k.Path)
	if !hasWord(infoLine(t, out, "options"), "clientPin") {
		t.Fatal("clientPin not set after fido2-token -S")
	}

	_, errOut, err := tool(t, "0000\n5678\n5678\n", "fido2-token", "-C", k.Path)
	if err == nil || !strings.Contains(errOut, "FIDO_ERR_PIN_INVALID") {
		t.Fatalf("change with a wrong PIN: %v %s", err, errOut)
	}
	if got := infoLine(t, mustTool(t, "", "fido2-token", "-I", k.Path), "pin retries"); got != "7" {
		t.Fatalf("pin retries %s after one wrong PIN", got)
	}
	mustTool(t, "1234\n5678\n5678\n", "fido2-token", "-C", k.Path)
	out = mustTool(t, "5678\n", "fido2-token", "-I", "-c", k.Path)
	if !strings.Contains(out, "existing rk(s): 0") || !strings.Contains(out, "remaining rk(s): 25") {
		t.Fatalf("credential metadata with the new PIN:\n%s", out)
	}
}

// writeParams writes a fido2-cred/fido2-assert input file, one item a line.
func writeParams(t *testing.T, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "params")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func randomB64(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func TestFido2CredAndAssert(t *testing.T) {
	k := softkeytest.Serve(t, softkey.Config{})
	mustTool(t, "1234\n1234\n", "fido2-token", "-S", k.Path)
	dir := t.TempDir()
	userID := base64.StdEncoding.EncodeToString([]byte("alice-handle"))

	// fido2-cred -M makes a discoverable credential; -V verifies its
	// packed attestation and writes the public key.
	credOut := mustTool(t, "1234\n", "fido2-cred", "-M", "-r", "-i", writeParams(t, randomB64(32), "example.com", "alice", userID), k.Path)
	lines := strings.Split(strings.TrimSpace(credOut), "\n")
	if len(lines) < 7 || lines[2] != "packed" {
		t.Fatalf("fido2-cred -M output:\n%s", credOut)
	}
	credID := lines[4]
	credFile := filepath.Join(dir, "cred")
	os.WriteFile(credFile, []byte(credOut), 0o600)
	pubkey := filepath.Join(dir, "pubkey")
	mustTool(t, "", "fido2-cred", "-V", "-i", credFile, "-o", pubkey, "es256")

	// fido2-assert -G then -V with that key.
	assertFile := filepath.Join(dir, "assert")
	mustTool(t, "1234\n", "fido2-assert", "-G", "-i", writeParams(t, randomB64(32), "example.com", credID), "-o", assertFile, k.Path)
	mustTool(t, "", "fido2-assert", "-V", "-i", assertFile, pubkey, "es256")

	// A second credential's key must not verify the first's assertion.
	otherOut := mustTool(t, "1234\n", "fido2-cred", "-M", "-i", writeParams(t, randomB64(32), "example.com", "bob", randomB64(8)), k.Path)
	otherFile, otherKey := filepath.Join(dir, "other"), filepath.Join(dir, "otherkey")
	os.WriteFile(otherFile, []byte(otherOut), 0o600)
	mustTool(t, "", "fido2-cred", "-V", "-i", otherFile, "-o", otherKey, "es256")
	if _, _, err := tool(t, "", "fido2-assert", "-V", "-i", assertFile, otherKey, "es256"); err == nil {
		t.Fatal("an assertion verified with another credential's key")
	}

	// fido2-token -L lists the RP and the credential; -D deletes it.
	if out := mustTool(t, "1234\n", "fido2-token", "-L", "-r", k.Path); !strings.Contains(out, " example.com") {
		t.Fatalf("fido2-token -L -r:\n%s", out)
	}
	out := mustTool(t, "1234\n", "fido2-token", "-L", "-k", "example.com", k.Path)
	if !strings.Contains(out, credID) || !strings.Contains(out, userID) || !strings.Contains(out, "es256") {
		t.Fatalf("fido2-token -L -k:\n%s", out)
	}
	// -S -c updates the stored user information.
	mustTool(t, "1234\n", "fido2-token", "-S", "-c", "-i", credID, "-k", userID, "-n", "alice2", "-p", "Alice Two", k.Path)
	if out := mustTool(t, "1234\n", "fido2-token", "-L", "-k", "example.com", k.Path); !strings.Contains(out, "Alice Two") {
		t.Fatalf("display name not updated:\n%s", out)
	}
	mustTool(t, "1234\n", "fido2-token", "-D", "-i", credID, k.Path)
	if _, errOut, err := tool(t, "1234\n", "fido2-assert", "-G", "-i", writeParams(t, randomB64(32), "example.com", credID), k.Path); err == nil || !strings.Contains(errOut, "FIDO_ERR_NO_CREDENTIALS") {
		t.Fatalf("assertion with a deleted credential: %v %s", err, errOut)
	}
}

func TestFido2TokenReset(t *testing.T) {
	k := softkeytest.Serve(t, softkey.Config{})
	mustTool(t, "1234\n1234\n", "fido2-token", "-S", k.Path)
	mustTool(t, "1234\n", "fido2-cred", "-M", "-r", "-i", writeParams(t, randomB64(32), "example.com", "alice", randomB64(8)), k.Path)
	mustTool(t, "", "fido2-token", "-R", k.Path)
	out := mustTool(t, "", "fido2-token", "-I", k.Path)
	if !hasWord(infoLine(t, out, "options"), "noclientPin") || infoLine(t, out, "remaining rk(s)") != "25" {
		t.Fatalf("after reset:\n%s", out)
	}
}

func TestFido2TokenList(t *testing.T) {
	// udev does not list the virtual path (the platform layer adds it from
	// configuration); -L must still run cleanly with the shim loaded.
	softkeytest.Serve(t, softkey.Config{})
	out, errOut, err := tool(t, "", "fido2-token", "-L")
	if err != nil || strings.Contains(out, softkeytest.PathPrefix) {
		t.Fatalf("fido2-token -L: %v\n%s%s", err, out, errOut)
	}
}

func TestFido2TokenConfig(t *testing.T) {
	k := softkeytest.Serve(t, softkey.Config{})
	mustTool(t, "1234\n1234\n", "fido2-token", "-S", k.Path)

	// authenticatorConfig setMinPINLength: raising the minimum above the
	// PIN's length forces a change, and the new PIN must meet it.
	mustTool(t, "1234\n", "fido2-token", "-S", "-l", "6", k.Path)
	out := mustTool(t, "", "fido2-token", "-I", k.Path)
	if infoLine(t, out, "minpinlen") != "6" || infoLine(t, out, "pin change required") != "true" {
		t.Fatalf("after -S -l 6:\n%s", out)
	}
	_, errOut, err := tool(t, "1234\n12345\n12345\n", "fido2-token", "-C", k.Path)
	if err == nil || !strings.Contains(errOut, "FIDO_ERR_PIN_POLICY_VIOLATION") {
		t.Fatalf("change to a PIN below the key's minimum: %v %s", err, errOut)
	}
	_, errOut, err = tool(t, "1234\n", "fido2-token", "-I", "-c", k.Path)
	if err == nil || !strings.Contains(errOut, "FIDO_ERR_PIN_POLICY_VIOLATION") {
		t.Fatalf("token use while a PIN change is forced: %v %s", err, errOut)
	}
	mustTool(t, "1234\n123456\n123456\n", "fido2-token", "-C", k.Path)
	if got := infoLine(t, mustTool(t, "", "fido2-token", "-I", k.Path), "pin change required"); got != "false" {
		t.Fatalf("pin change required %s after the change", got)
	}
	// A lower minimum is refused.
	if _, errOut, err := tool(t, "123456\n", "fido2-token", "-S", "-l", "4", k.Path); err == nil || !strings.Contains(errOut, "FIDO_ERR_PIN_POLICY_VIOLATION") {
		t.Fatalf("lowering the minimum: %v %s", err, errOut)
	}

	// forcePINChange and alwaysUv.
	mustTool(t, "123456\n", "fido2-token", "-S", "-f", k.Path)
	if got := infoLine(t, mustTool(t, "", "fido2-token", "-I", k.Path), "pin change required"); got != "true" {
		t.Fatalf("pin change required %s after -S -f", got)
	}
	mustTool(t, "123456\n654321\n654321\n", "fido2-token", "-C", k.Path)
	mustTool(t, "654321\n", "fido2-token", "-S", "-u", k.Path)
	if !hasWord(infoLine(t, mustTool(t, "", "fido2-token", "-I", k.Path), "options"), "alwaysUv") {
		t.Fatal("alwaysUv not on after -S -u")
	}
	// Enterprise attestation.
	mustTool(t, "654321\n", "fido2-token", "-S", "-a", k.Path)
	if !hasWord(infoLine(t, mustTool(t, "", "fido2-token", "-I", k.Path), "options"), "ep") {
		t.Fatal("ep not on after -S -a")
	}
}

func TestFido2TokenFingerprints(t *testing.T) {
	k := softkeytest.Serve(t, softkey.Config{})
	mustTool(t, "1234\n1234\n", "fido2-token", "-S", k.Path)
	mustTool(t, "1234\n", "fido2-token", "-S", "-e", k.Path)
	out := mustTool(t, "1234\n", "fido2-token", "-L", "-e", k.Path)
	m := regexp.MustCompile(`(?m)^00: (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("fido2-token -L -e:\n%s", out)
	}
	mustTool(t, "1234\n", "fido2-token", "-S", "-e", "-i", m[1], "-n", "left thumb", k.Path)
	if out := mustTool(t, "1234\n", "fido2-token", "-L", "-e", k.Path); !strings.Contains(out, "left thumb") {
		t.Fatalf("template not renamed:\n%s", out)
	}
	mustTool(t, "1234\n", "fido2-token", "-D", "-e", "-i", m[1], k.Path)
	if !hasWord(infoLine(t, mustTool(t, "", "fido2-token", "-I", k.Path), "options"), "nobioEnroll") {
		t.Fatal("bioEnroll still on after deleting the only template")
	}
}

// The fido2-tools runners shared with the other tests.
var (
	tool     = softkeytest.Tool
	mustTool = softkeytest.MustTool
	infoLine = softkeytest.InfoLine
)
