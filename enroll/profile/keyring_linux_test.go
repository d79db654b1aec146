//go:build linux

package profile

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keydesk/keydesk/enroll/profile/secretservicetest"
)

// wantNoKeyringWarning is the warning when no Secret Service answers.
const wantNoKeyringWarning = "No keyring is available (no Secret Service is running): you will have to sign in " +
	"again next time Keydesk starts; your session is kept in memory only."

func TestOpenTokenStoreShouldUseARunningSecretService(t *testing.T) {
	ss := secretservicetest.Shared(t)
	store, warning := OpenTokenStore()
	if warning != "" {
		t.Errorf("warning = %q, want none", warning)
	}
	if _, ok := store.(*Keyring); !ok {
		t.Fatalf("store is %T, want *Keyring", store)
	}
	// The probe cleans up after itself.
	out, err := ss.SecretTool("", "search", "--all", "service", KeyringService)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, strings.TrimSpace(probeAccount)) {
		t.Errorf("the probe entry is still in the keyring:\n%s", out)
	}
}

func TestKeyringTokenStore(t *testing.T) {
	secretservicetest.Shared(t)
	testTokenStore(t, NewKeyring(), "suite-")
	t.Run("ShouldWorkAsZeroValue", func(t *testing.T) {
		var k Keyring
		if err := k.Set("zero", "tok"); err != nil {
			t.Fatal(err)
		}
		if got, err := k.Get("zero"); err != nil || got != "tok" {
			t.Errorf("Get: got %q, %v", got, err)
		}
		if err := k.Delete("zero"); err != nil {
			t.Error(err)
		}
	})
}

// TestKeyringShouldFileTokensUnderKeydeskAndTheProfileName checks, with
// libsecret's secret-tool rather than go-keyring, that tokens really are in
// the Secret Service, under service "keydesk" and the profile name in
// lowercase, where other tools (and the next Keydesk) find them.
func TestKeyringShouldFileTokensUnderKeydeskAndTheProfileName(t *testing.T) {
	ss := secretservicetest.Shared(t)
	k := NewKeyring()
	const tok = "tok-written-by-keydesk"
	if err := k.Set("Work-EU", tok); err != nil {
		t.Fatal(err)
	}
	got, err := ss.SecretTool("", "lookup", "service", "keydesk", "username", "work-eu")
	if err != nil || got != tok {
		t.Errorf("secret-tool lookup: got %q, %v; want the token Keydesk stored", got, err)
	}

	// A token another client stores is one Keydesk reads.
	if _, err := ss.SecretTool("tok-written-by-secret-tool", "store", "--label=test", "service", "keydesk", "username", "home"); err != nil {
		t.Fatal(err)
	}
	if got, err := k.Get("home"); err != nil || got != "tok-written-by-secret-tool" {
		t.Errorf("Get(home): got %q, %v", got, err)
	}

	// Delete removes it from the Secret Service.
	if err := k.Delete("work-eu"); err != nil {
		t.Fatal(err)
	}
	if out, err := ss.SecretTool("", "lookup", "service", "keydesk", "username", "work-eu"); err == nil {
		t.Errorf("secret-tool still finds the deleted token: %q", out)
	}
	if err := k.Delete("home"); err != nil {
		t.Fatal(err)
	}
}

func TestOpenTokenStoreShouldFallBackWithoutASessionBus(t *testing.T) {
	if !secretservicetest.InChild() {
		secretservicetest.RunInChild(t, secretservicetest.BusEnv+"="+secretservicetest.NoBus)
		return
	}
	start := time.Now()
	store, warning := OpenTokenStore()
	elapsed := time.Since(start)
	if _, ok := store.(*Memory); !ok {
		t.Errorf("store is %T, want *Memory", store)
	}
	if warning != wantNoKeyringWarning {
		t.Errorf("warning = %q\nwant      %q", warning, wantNoKeyringWarning)
	}
	if elapsed >= ProbeTimeout {
		t.Errorf("OpenTokenStore took %s, want less than the probe timeout %s", elapsed, ProbeTimeout)
	}
	// The fallback store works.
	if err := store.Set("work", "tok"); err != nil {
		t.Fatal(err)
	}
	if got, err := store.Get("work"); err != nil || got != "tok" {
		t.Errorf("Get: got %q, %v", got, err)
	}
}

func TestOpenTokenStoreShouldFallBackWhenNoSecretServiceIsOnTheBus(t *testing.T) {
	if !secretservicetest.InChild() {
		secretservicetest.Shared(t) // the daemons are installed
		bus, err := secretservicetest.StartBus(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(bus.Stop)
		secretservicetest.RunInChild(t, secretservicetest.BusEnv+"="+bus.Address)
		return
	}
	start := time.Now()
	store, warning := OpenTokenStore()
	if _, ok := store.(*Memory); !ok {
		t.Errorf("store is %T, want *Memory", store)
	}
	if warning != wantNoKeyringWarning {
		t.Errorf("warning = %q\nwant      %q", warning, wantNoKeyringWarning)
	}
	if elapsed := time.Since(start); elapsed >= ProbeTimeout {
		t.Errorf("OpenTokenStore took %s, want less than the probe timeout %s", elapsed, ProbeTimeout)
	}
	if err := ProbeKeyring(ProbeTimeout); err == nil || !strings.Contains(err.Error(), "org.freedesktop.secrets") {
		t.Errorf("ProbeKeyring: got %v, want an error naming the missing service", err)
	}
}

func TestOpenTokenStoreShouldGiveUpOnABusThatNeverAnswers(t *testing.T) {
	if !secretservicetest.InChild() {
		secretservicetest.RunInChild(t, secretservicetest.BusEnv+"="+silentBus(t))
		return
	}
	start := time.Now()
	store, warning := OpenTokenStore()
	elapsed := time.Since(start)
	if _, ok := store.(*Memory); !ok {
		t.Errorf("store is %T, want *Memory", store)
	}
	const want = "No keyring is available (the keyring did not answer): you will have to sign in again " +
		"next time Keydesk starts; your session is kept in memory only."
	if warning != want {
		t.Errorf("warning = %q\nwant      %q", warning, want)
	}
	if elapsed < ProbeTimeout || elapsed > ProbeTimeout+2*time.Second {
		t.Errorf("OpenTokenStore took %s, want the probe timeout %s", elapsed, ProbeTimeout)
	}

	// Every Keyring operation gives up too.
	k := &Keyring{timeout: 200 * time.Millisecond}
	if _, err := k.Get("work"); !errors.Is(err, ErrKeyringTimeout) {
		t.Errorf("Get: got %v, want ErrKeyringTimeout", err)
	}
	if err := k.Set("work", "secret-token"); !errors.Is(err, ErrKeyringTimeout) || strings.Contains(err.Error(), "secret-token") {
		t.Errorf("Set: got %v, want ErrKeyringTimeout without the token", err)
	}
	if err := k.Delete("work"); !errors.Is(err, ErrKeyringTimeout) {
		t.Errorf("Delete: got %v, want ErrKeyringTimeout", err)
	}
}

func TestOpenTokenStoreShouldFallBackWhenTheKeyringIsLocked(t *testing.T) {
	if !secretservicetest.InChild() {
		secretservicetest.Shared(t)
		locked, err := secretservicetest.Start(false)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(locked.Stop)
		secretservicetest.RunInChild(t, secretservicetest.BusEnv+"="+locked.Bus.Address)
		return
	}
	store, warning := OpenTokenStore()
	if _, ok := store.(*Memory); !ok {
		t.Errorf("store is %T, want *Memory", store)
	}
	const want = "No keyring is available (the keyring is locked): you will have to sign in again " +
		"next time Keydesk starts; your session is kept in memory only."
	if warning != want {
		t.Errorf("warning = %q\nwant      %q", warning, want)
	}
}
