package stacktest

import (
	"bytes"
	"errors"
	"os"
	"sync/atomic"
	"testing"
	"time"

	libfido2 "github.com/keys-pub/go-libfido2"

	"github.com/keydesk/keydesk/platform/softkey"
	"github.com/keydesk/keydesk/platform/softkey/softkeytest"
)

func TestMain(m *testing.M) { os.Exit(softkeytest.Preload(m)) }

// clock is a key clock tests can move forward.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// openKey serves a fresh key and opens it with go-libfido2.
func openKey(t *testing.T, cfg softkey.Config) (*softkeytest.Key, *libfido2.Device) {
	t.Helper()
	k := softkeytest.Serve(t, cfg)
	dev, err := libfido2.NewDevice(k.Path)
	if err != nil {
		t.Fatal(err)
	}
	return k, dev
}

func option(info *libfido2.DeviceInfo, name string) libfido2.OptionValue {
	for _, o := range info.Options {
		if o.Name == name {
			return o.Value
		}
	}
	return libfido2.Default
}

func TestLibfido2Info(t *testing.T) {
	_, dev := openKey(t, softkey.Config{})
	info, err := dev.Info()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(info.AAGUID, softkey.AAGUID[:]) {
		t.Fatalf("AAGUID %x", info.AAGUID)
	}
	if !contains(info.Versions, "FIDO_2_1") || !contains(info.Versions, "FIDO_2_0") {
		t.Fatalf("versions %v", info.Versions)
	}
	for _, ext := range []string{"credProtect", "hmac-secret", "minPinLength"} {
		if !contains(info.Extensions, ext) {
			t.Errorf("extension %s missing from %v", ext, info.Extensions)
		}
	}
	want := map[string]libfido2.OptionValue{
		"rk": libfido2.True, "up": libfido2.True, "clientPin": libfido2.False, "pinUvAuthToken": libfido2.True,
		"credMgmt": libfido2.True, "authnrCfg": libfido2.True, "setMinPINLength": libfido2.True,
		"makeCredUvNotRqd": libfido2.True, "alwaysUv": libfido2.False,
	}
	for name, v := range want {
		if got := option(info, name); got != v {
			t.Errorf("option %s = %q, want %q", name, got, v)
		}
	}
	if !bytes.Equal(info.Protocols, []byte{2, 1}) {
		t.Errorf("PIN protocols %v", info.Protocols)
	}
	hid, err := dev.CTAPHIDInfo()
	if err != nil {
		t.Fatal(err)
	}
	if hid.Protocol != 2 || hid.Flags&0x04 == 0 {
		t.Errorf("CTAPHID info %+v", hid)
	}
	isFIDO2, err := dev.IsFIDO2()
	if err != nil || !isFIDO2 {
		t.Errorf("IsFIDO2 %v %v", isFIDO2, err)
	}
}

func TestLibfido2PIN(t *testing.T) {
	k, dev := openKey(t, softkey.Config{})
	if err := dev.SetPIN("12", ""); !errors.Is(err, libfido2.ErrPinPolicyViolation) {
		t.Fatalf("short PIN: %v", err)
	}
	if err := dev.SetPIN("1234", ""); err != nil {
		t.Fatal(err)
	}
	info, _ := dev.Info()
	if option(info, "clientPin") != libfido2.True {
		t.Fatal("clientPin not true after SetPIN")
	}
	if n, err := dev.RetryCount(); err != nil || n != 8 {
		t.Fatalf("RetryCount %d %v", n, err)
	}
	if err := dev.SetPIN("5678", "0000"); !errors.Is(err, libfido2.ErrPinInvalid) {
		t.Fatalf("change with wrong PIN: %v", err)
	}
	if n, _ := dev.RetryCount(); n != 7 {
		t.Fatalf("RetryCount %d after one wrong PIN", n)
	}
	if err := dev.SetPIN("5678", "1234"); err != nil {
		t.Fatalf("change PIN: %v", err)
	}
	// Three wrong PINs in a row: blocked until power cycle.
	for i := 0; i < 2; i++ {
		if _, err := dev.CredentialsInfo("0000"); !errors.Is(err, libfido2.ErrPinInvalid) {
			t.Fatalf("wrong PIN %d: %v", i, err)
		}
	}
	if _, err := dev.CredentialsInfo("0000"); !errors.Is(err, libfido2.ErrPinAuthBlocked) {
		t.Fatalf("third wrong PIN: %v", err)
	}
	if _, err := dev.CredentialsInfo("5678"); !errors.Is(err, libfido2.ErrPinAuthBlocked) {
		t.Fatalf("right PIN while blocked: %v", err)
	}
	k.Authenticator.PowerCycle()
	if _, err := dev.CredentialsInfo("5678"); err != nil {
		t.Fatalf("right PIN after power cycle: %v", err)
	}
}

func TestLibfido2RegisterAndLoginVerifiedByGoWebauthn(t *testing.T) {
	_, dev := openKey(t, softkey.Config{})
	wa := newRP(t)
	alice := &testUser{id: []byte("alice-handle"), name: "alice"}

	// Without a PIN: a server-side credential.
	cred := register(t, wa, dev, alice, "", false)
	if cred.AttestationType != "basic_full" {
		t.Fatalf("attestation type %q, want basic_full (packed with x5c)", cred.AttestationType)
	}
	if !bytes.Equal(cred.Authenticator.AAGUID, softkey.AAGUID[:]) {
		t.Fatalf("AAGUID %x", cred.Authenticator.AAGUID)
	}
	got := login(t, wa, dev, alice, "", [][]byte{cred.ID})
	if got.Authenticator.SignCount == 0 {
		t.Fatal("sign counter not advancing")
	}

	// With a PIN: a discoverable credential, found without an allow list.
	if err := dev.SetPIN("1234", ""); err != nil {
		t.Fatal(err)
	}
	bob := &testUser{id: []byte("bob-handle"), name: "bob"}
	rk := register(t, wa, dev, bob, "1234", true)
	if !rk.Flags.UserVerified {
		t.Fatal("UV flag missing on a PIN-verified registration")
	}
	got = login(t, wa, dev, bob, "1234", nil)
	if !bytes.Equal(got.ID, rk.ID) {
		t.Fatal("discoverable login returned another credential")
	}
}

func TestLibfido2CredentialManagement(t *testing.T) {
	_, dev := openKey(t, softkey.Config{})
	if err := dev.SetPIN("1234", ""); err != nil {
		t.Fatal(err)
	}
	wa := newRP(t)
	var ids [][]byte
	for _, name := range []string{"alice", "bob"} {
		ids = append(ids, register(t, wa, dev, &testUser{id: []byte(name + "-handle"), name: name}, "1234", true).ID)
	}
	info, err := dev.CredentialsInfo("1234")
	if err != nil {
		t.Fatal(err)
	}
	if info.RKExisting != 2 || info.RKRemaining != 23 {
		t.Fatalf("metadata %+v", info)
	}
	rps, err := dev.RelyingParties("1234")
	if err != nil || len(rps) != 1 || rps[0].ID != testRPID || rps[0].Name != "Example" {
		t.Fatalf("RelyingParties %+v %v", rps, err)
	}
	creds, err := dev.Credentials(testRPID, "1234")
	if err != nil || len(creds) != 2 {
		t.Fatalf("Credentials %d %v", len(creds), err)
	}
	names := map[string]bool{}
	for _, c := range creds {
		names[c.User.Name] = true
	}
	if !names["alice"] || !names["bob"] {
		t.Fatalf("users %v", names)
	}
	if err := dev.DeleteCredential(ids[0], "1234"); err != nil {
		t.Fatal(err)
	}
	if err := dev.DeleteCredential(ids[0], "1234"); !errors.Is(err, libfido2.ErrNoCredentials) {
		t.Fatalf("second delete: %v", err)
	}
	creds, _ = dev.Credentials(testRPID, "1234")
	if len(creds) != 1 || creds[0].User.Name != "bob" {
		t.Fatalf("after delete: %d credentials", len(creds))
	}
}

func TestLibfido2Reset(t *testing.T) {
	var clk clock
	k, dev := openKey(t, softkey.Config{Now: clk.now})
	if err := dev.SetPIN("1234", ""); err != nil {
		t.Fatal(err)
	}
	clk.advance(11 * time.Second)
	if err := dev.Reset(); !errors.Is(err, libfido2.ErrNotAllowed) {
		t.Fatalf("reset after 10 s: %v", err)
	}
	k.Authenticator.PowerCycle()
	if err := dev.Reset(); err != nil {
		t.Fatalf("reset after power cycle: %v", err)
	}
	info, _ := dev.Info()
	if option(info, "clientPin") != libfido2.False {
		t.Fatal("PIN survived reset")
	}
}

func TestLibfido2ResetDenied(t *testing.T) {
	_, dev := openKey(t, softkey.Config{Presence: softkey.DenyAlways})
	if err := dev.Reset(); !errors.Is(err, libfido2.ErrOperationDenied) {
		t.Fatalf("denied reset: %v", err)
	}
}

func TestLibfido2CancelWhileWaitingForTouch(t *testing.T) {
	sig := softkey.NewSignal(10 * time.Second)
	k := softkeytest.Serve(t, softkey.Config{Presence: sig})
	type result struct {
		name string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		name, err := makeCredentialCancelled(k.Path, sig.Waiting())
		res <- result{name, err}
	}()
	select {
	case r := <-res:
		if r.err != nil || r.name != "FIDO_ERR_KEEPALIVE_CANCEL" {
			t.Fatalf("cancelled makeCredential: %q %v", r.name, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancel did not interrupt the wait for a touch")
	}
}

func TestLibfido2TouchAfterDelay(t *testing.T) {
	sig := softkey.NewSignal(10 * time.Second)
	_, dev := openKey(t, softkey.Config{Presence: sig})
	waiting := sig.Waiting()
	go func() {
		<-waiting
		time.Sleep(300 * time.Millisecond) // several keep-alives go out meanwhile
		sig.Touch()
	}()
	start := time.Now()
	if _, err := dev.MakeCredential(bytes.Repeat([]byte{1}, 32), libfido2.RelyingParty{ID: testRPID},
		libfido2.User{ID: []byte("u"), Name: "u"}, libfido2.ES256, "", nil); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < 300*time.Millisecond {
		t.Fatal("credential made before the touch")
	}
}

func TestLibfido2BioEnrollment(t *testing.T) {
	_, dev := openKey(t, softkey.Config{})
	if err := dev.SetPIN("1234", ""); err != nil {
		t.Fatal(err)
	}
	if err := dev.BioEnroll("1234"); err != nil {
		t.Fatal(err)
	}
	list, err := dev.BioList("1234")
	if err != nil || len(list) != 1 {
		t.Fatalf("BioList %v %v", list, err)
	}
	if err := dev.BioSetTemplateName("1234", list[0].ID, "right index"); err != nil {
		t.Fatal(err)
	}
	list, _ = dev.BioList("1234")
	if list[0].Name != "right index" {
		t.Fatalf("template name %q", list[0].Name)
	}
	info, _ := dev.Info()
	if option(info, "uv") != libfido2.True || option(info, "bioEnroll") != libfido2.True {
		t.Fatal("uv/bioEnroll not true with a fingerprint enrolled")
	}
	if err := dev.BioDelete("1234", list[0].ID); err != nil {
		t.Fatal(err)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestLibfido2ManySequentialOpens(t *testing.T) {
	// libfido2 allocates a channel on every open; hundreds of opens in a
	// row must all succeed (channels are recycled, none is refused).
	_, dev := openKey(t, softkey.Config{})
	for i := 0; i < 500; i++ {
		if _, err := dev.Info(); err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
	}
}

func TestLibfido2TakesTurnsLikeHidraw(t *testing.T) {
	// libfido2 flocks a hidraw node while it has it open; the shim gives
	// the virtual device the same exclusivity, so a second program waits
	// its turn instead of colliding with a transaction in progress.
	k := softkeytest.Serve(t, softkey.Config{})
	h, err := openLibfido2(k.Path)
	if err != nil {
		t.Fatal(err)
	}
	dev, err := libfido2.NewDevice(k.Path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := dev.Info()
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("second open went through while the device was held: %v", err)
	case <-time.After(400 * time.Millisecond):
	}
	h.close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("second open after the first closed: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("second open never got the device")
	}
}
