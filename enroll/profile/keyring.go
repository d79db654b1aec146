package profile

import (
	"crypto/rand"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	// go-keyring is the one maintained Go library that reaches all three
	// system keyrings Keydesk runs on (Secret Service over D-Bus on
	// Linux, the Keychain on macOS, Credential Manager on Windows) in
	// pure Go, without cgo or libsecret; it brings only godbus and
	// wincred with it.
	"github.com/zalando/go-keyring"
)

// KeyringService is the service name Keydesk's session tokens are filed
// under in the system keyring; the account is the profile name in
// lowercase.
const KeyringService = "keydesk"

// ProbeTimeout is how long OpenTokenStore waits for the keyring to answer
// before making do without it. D-Bus calls to a Secret Service that never
// answers (or an unlock prompt nobody can see) block indefinitely.
const ProbeTimeout = 3 * time.Second

// KeyringTimeout is how long a Keyring operation may take before it fails
// with ErrKeyringTimeout. It is long enough for the user to answer the
// keyring's own unlock prompt.
const KeyringTimeout = 30 * time.Second

// probeAccount begins the keyring account of ProbeKeyring's entry; a
// random suffix keeps two Keydesks starting at once out of each other's
// way, and the space keeps it apart from every profile name.
const probeAccount = "keydesk probe "

// ErrKeyringTimeout is a keyring operation that got no answer in time.
// The operation may still complete later.
var ErrKeyringTimeout = errors.New("the system keyring did not answer in time")

// Keyring is a TokenStore in the operating system's keyring: the Secret
// Service (GNOME Keyring, KWallet) over D-Bus on Linux, the Keychain on
// macOS, Credential Manager on Windows. Tokens are stored under service
// KeyringService, account the profile name in lowercase, and survive
// Keydesk restarts. Every operation gives up after KeyringTimeout. Use
// OpenTokenStore, which checks that the keyring works first; the zero
// Keyring is ready to use too.
type Keyring struct {
	timeout time.Duration // 0 for KeyringTimeout
}

var _ TokenStore = (*Keyring)(nil)

// NewKeyring returns a TokenStore in the system keyring, without checking
// that there is one; OpenTokenStore does.
func NewKeyring() *Keyring { return &Keyring{} }

// wait returns how long an operation may take.
func (k *Keyring) wait() time.Duration {
	if k.timeout > 0 {
		return k.timeout
	}
	return KeyringTimeout
}

// Get returns the profile's token, or ErrNotFound.
func (k *Keyring) Get(profile string) (string, error) {
	key, err := tokenKey(profile)
	if err != nil {
		return "", err
	}
	var token string
	err = withTimeout(k.wait(), func() error {
		var err error
		token, err = keyring.Get(KeyringService, key)
		return err
	})
	if err != nil {
		return "", keyringError("read the session token of", profile, err)
	}
	return token, nil
}

// Set stores the profile's token, replacing any previous one.
func (k *Keyring) Set(profile, token string) error {
	key, err := tokenKey(profile)
	if err != nil {
		return err
	}
	if err := checkToken(token); err != nil {
		return err
	}
	err = withTimeout(k.wait(), func() error { return keyring.Set(KeyringService, key, token) })
	if err != nil {
		return keyringError("store the session token of", profile, err)
	}
	return nil
}

// Delete forgets the profile's token; ErrNotFound if there was none.
func (k *Keyring) Delete(profile string) error {
	key, err := tokenKey(profile)
	if err != nil {
		return err
	}
	err = withTimeout(k.wait(), func() error { return keyring.Delete(KeyringService, key) })
	if err != nil {
		return keyringError("delete the session token of", profile, err)
	}
	return nil
}

// keyringError turns a go-keyring error into this package's: ErrNotFound
// as it is, anything else with the operation and profile as context. The
// errors go-keyring returns carry no secret.
func keyringError(op, profile string, err error) error {
	if errors.Is(err, keyring.ErrNotFound) {
		return ErrNotFound
	}
	return fmt.Errorf("keyring: %s profile %q: %w", op, profile, err)
}

// withTimeout runs f in its own goroutine and waits at most d for it. On
// timeout the goroutine is left to finish on its own (a D-Bus call cannot
// be cancelled), and ErrKeyringTimeout is returned.
func withTimeout(d time.Duration, f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return fmt.Errorf("%w (waited %s)", ErrKeyringTimeout, d)
	}
}

// ProbeKeyring checks that the system keyring works, by storing, reading
// back and deleting a random entry within timeout. OpenTokenStore uses it;
// it is exported so that a diagnostic can show why the keyring is not
// used. The error says what failed and holds no secret.
func ProbeKeyring(timeout time.Duration) error {
	return withTimeout(timeout, func() error {
		account, want := probeAccount+rand.Text(), rand.Text()
		if err := keyring.Set(KeyringService, account, want); err != nil {
			return fmt.Errorf("store a test entry: %w", err)
		}
		got, err := keyring.Get(KeyringService, account)
		if err != nil {
			return fmt.Errorf("read the test entry back: %w", err)
		}
		if err := keyring.Delete(KeyringService, account); err != nil {
			return fmt.Errorf("delete the test entry: %w", err)
		}
		if got != want {
			return errors.New("the keyring returned a different value than was stored")
		}
		return nil
	})
}

// OpenTokenStore returns the system keyring as a TokenStore if it works
// (see ProbeKeyring; it waits at most ProbeTimeout). Otherwise it returns
// a Memory store and a warning to show the user, in plain language, that
// sessions will not outlive this run of Keydesk; warning is "" when the
// keyring works.
func OpenTokenStore() (store TokenStore, warning string) {
	return openTokenStore(ProbeTimeout)
}

// openTokenStore is OpenTokenStore with the probe's timeout given.
func openTokenStore(timeout time.Duration) (TokenStore, string) {
	if err := ProbeKeyring(timeout); err != nil {
		return NewMemory(), unavailableWarning(err)
	}
	return NewKeyring(), ""
}

// unavailableWarning says, for the user, why the keyring is not used and
// what that means for them.
func unavailableWarning(err error) string {
	return "No keyring is available (" + unavailableReason(err) + "): you will have to sign in again " +
		"next time Keydesk starts; your session is kept in memory only."
}

// unavailableReason names, in plain words, what went wrong with the
// keyring.
func unavailableReason(err error) string {
	switch {
	case errors.Is(err, ErrKeyringTimeout):
		return "the keyring did not answer"
	case errors.Is(err, keyring.ErrUnsupportedPlatform):
		return "Keydesk cannot use a keyring on this system"
	case runtime.GOOS == "darwin":
		return "the Keychain refused access"
	case runtime.GOOS == "windows":
		return "Windows Credential Manager refused access"
	case strings.Contains(strings.ToLower(err.Error()), "lock"):
		// go-keyring: "failed to unlock correct collection"; the Secret
		// Service: org.freedesktop.Secret.Error.IsLocked.
		return "the keyring is locked"
	default:
		return "no Secret Service is running"
	}
}
