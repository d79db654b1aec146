package stacktest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/keydesk/keydesk/platform/softkey"
	"github.com/keydesk/keydesk/platform/softkey/softkeytest"
)

// toolTimeout bounds every fido2-tools run in U2F mode: libfido2 repeats
// a U2F request for as long as the key answers "touch required", so a key
// that never approves would otherwise hang the test.
const toolTimeout = 20 * time.Second

// u2fTool runs a fido2-tools binary like tool does, killed after
// toolTimeout.
func u2fTool(t *testing.T, name string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader("")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %v did not finish within %v\nstderr: %s", name, args, toolTimeout, errb.String())
	}
	return out.String(), errb.String(), err
}

// mustU2FTool is u2fTool that fails the test on a non-zero exit.
func mustU2FTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, errOut, err := u2fTool(t, name, args...)
	if err != nil {
		t.Fatalf("%s %v: %v\nstdout: %s\nstderr: %s", name, args, err, out, errOut)
	}
	return out
}

// u2fCredential is a credential made with fido2-cred, checked with
// fido2-cred -V.
type u2fCredential struct {
	id     string // base64, as the tools print it
	fmt    string
	pubkey string // path of the PEM public key fido2-cred -V wrote
}

// makeCred runs fido2-cred -M (in U2F mode when u2f is set) for rpID, then
// verifies the attestation with fido2-cred -V.
func makeCred(t *testing.T, k *softkeytest.Key, rpID string, u2f bool) u2fCredential {
	t.Helper()
	args := []string{"-M"} // the mode comes first
	if u2f {
		args = append(args, "-u")
	}
	args = append(args, "-i", writeParams(t, randomB64(32), rpID, "alice", randomB64(8)), k.Path)
	out := mustU2FTool(t, "fido2-cred", args...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 7 {
		t.Fatalf("fido2-cred %v output:\n%s", args, out)
	}
	dir := t.TempDir()
	credFile, pubkey := filepath.Join(dir, "cred"), filepath.Join(dir, "pubkey")
	if err := os.WriteFile(credFile, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	mustU2FTool(t, "fido2-cred", "-V", "-i", credFile, "-o", pubkey, "es256")
	return u2fCredential{id: lines[4], fmt: lines[2], pubkey: pubkey}
}

// publicKey reads the PEM key fido2-cred -V wrote.
func (c u2fCredential) publicKey(t *testing.T) *ecdsa.PublicKey {
	t.Helper()
	raw, err := os.ReadFile(c.pubkey)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		t.Fatalf("no PEM in %s", raw)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		t.Fatalf("public key %T", pub)
	}
	return k
}

// rawID decodes the credential ID.
func (c u2fCredential) rawID(t *testing.T) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(c.id)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestU2FThroughFido2Tools(t *testing.T) {
	k := softkeytest.Serve(t, softkey.Config{})

	// fido2-cred -M -u registers with U2F_REGISTER; -V checks the
	// fido-u2f attestation libfido2 builds from the raw response.
	cred := makeCred(t, k, "example.com", true)
	if cred.fmt != "fido-u2f" {
		t.Fatalf("attestation format %q, want fido-u2f", cred.fmt)
	}

	// fido2-assert -G -u looks the key handle up (check-only), signs
	// (enforce-user-presence-and-sign), and -V -p verifies the signature
	// and the user presence flag.
	assertFile := filepath.Join(t.TempDir(), "assert")
	mustU2FTool(t, "fido2-assert", "-G", "-u", "-i", writeParams(t, randomB64(32), "example.com", cred.id), "-o", assertFile, k.Path)
	mustU2FTool(t, "fido2-assert", "-V", "-p", "-i", assertFile, cred.pubkey, "es256")

	tests := []struct {
		name    string
		rpID    string
		args    []string
		wantErr string
	}{
		// up=false makes libfido2 stop after the check-only request,
		// whose "touch required" answer means the key handle is known.
		{name: "ShouldReportKnownKeyHandleOnCheckOnly", rpID: "example.com", args: []string{"-t", "up=false"}, wantErr: "FIDO_ERR_USER_PRESENCE_REQUIRED"},
		// A key handle is bound to its application: for another one
		// check-only answers "bad key handle".
		{name: "ShouldRefuseKeyHandleOfAnotherApplication", rpID: "example.org", wantErr: "FIDO_ERR_NO_CREDENTIALS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-G", "-u"}, tt.args...)
			args = append(args, "-i", writeParams(t, randomB64(32), tt.rpID, cred.id), k.Path)
			_, errOut, err := u2fTool(t, "fido2-assert", args...)
			if err == nil || !strings.Contains(errOut, tt.wantErr) {
				t.Fatalf("fido2-assert %v: %v, stderr %q, want %s", args, err, errOut, tt.wantErr)
			}
		})
	}
}

func TestU2FAndCTAP2ShareCredentials(t *testing.T) {
	k, dev := openKey(t, softkey.Config{})
	hid, err := dev.CTAPHIDInfo()
	if err != nil {
		t.Fatal(err)
	}
	const capNMSG = 0x08
	if hid.Flags&capNMSG != 0 {
		t.Fatalf("CTAPHID capabilities 0x%02x still say CTAPHID_MSG is not implemented", hid.Flags)
	}
	info, err := dev.Info()
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Versions) == 0 || info.Versions[0] != "U2F_V2" {
		t.Fatalf("versions %v, want U2F_V2 first", info.Versions)
	}

	t.Run("ShouldAssertWithU2FKeyHandleOverCTAP2", func(t *testing.T) {
		// The application parameter libfido2 sends is SHA-256 of the RP
		// ID it was given, so the same string as a CTAP2 rpId finds the
		// credential.
		cred := makeCred(t, k, "example.com", true)
		cdh := sha256.Sum256([]byte("ctap2 after u2f"))
		a, err := dev.Assertion("example.com", cdh[:], [][]byte{cred.rawID(t)}, "", nil)
		if err != nil {
			t.Fatalf("CTAP2 assertion with a U2F key handle: %v", err)
		}
		var authData []byte
		if err := cbor.Unmarshal(a.AuthDataCBOR, &authData); err != nil {
			t.Fatal(err)
		}
		rpIDHash := sha256.Sum256([]byte("example.com"))
		if len(authData) < 37 || !bytes.Equal(authData[:32], rpIDHash[:]) || authData[32]&0x01 == 0 {
			t.Fatalf("authenticator data %x", authData)
		}
		h := sha256.Sum256(append(append([]byte{}, authData...), cdh[:]...))
		if !ecdsa.VerifyASN1(cred.publicKey(t), h[:], a.Sig) {
			t.Fatal("CTAP2 assertion does not verify with the key U2F registered")
		}
	})

	t.Run("ShouldAuthenticateCTAP2CredentialOverU2F", func(t *testing.T) {
		cred := makeCred(t, k, "example.com", false)
		if cred.fmt != "packed" {
			t.Fatalf("attestation format %q, want packed", cred.fmt)
		}
		assertFile := filepath.Join(t.TempDir(), "assert")
		mustU2FTool(t, "fido2-assert", "-G", "-u", "-i", writeParams(t, randomB64(32), "example.com", cred.id), "-o", assertFile, k.Path)
		mustU2FTool(t, "fido2-assert", "-V", "-p", "-i", assertFile, cred.pubkey, "es256")
	})
}

func TestU2FTouchAfterDelay(t *testing.T) {
	// libfido2 repeats U2F_REGISTER every 100 ms while the key answers
	// "touch required"; the touch given meanwhile approves the next one.
	sig := softkey.NewSignal(10 * time.Second)
	k := softkeytest.Serve(t, softkey.Config{Presence: sig})
	waiting := sig.Waiting()
	touched := make(chan time.Time, 1)
	go func() {
		<-waiting
		time.Sleep(300 * time.Millisecond) // several polls go unanswered
		touched <- time.Now()
		sig.Touch()
	}()
	cred := makeCred(t, k, "example.com", true)
	select {
	case <-touched:
	default:
		t.Fatal("registered before the touch")
	}
	if cred.fmt != "fido-u2f" {
		t.Fatalf("attestation format %q", cred.fmt)
	}
}
