package profile

import (
	"errors"
	"fmt"
	"strings"
	"sync"
)

// MaxTokenLength is the longest session token a TokenStore keeps, in
// bytes. It is what every keyring holds: Windows Credential Manager takes
// at most 2560 bytes, and the macOS Keychain a little more once go-keyring
// has base64-encoded it; session tokens are far shorter.
const MaxTokenLength = 2048

// ErrNotFound is returned by TokenStore.Get and TokenStore.Delete when the
// profile has no session token: the user has to sign in.
var ErrNotFound = errors.New("no session token is stored for this profile")

// ErrInvalidToken is a token TokenStore.Set refuses: empty or longer than
// MaxTokenLength. The error never holds the token.
var ErrInvalidToken = errors.New("invalid session token")

// TokenStore keeps the session token each profile's RP granted, keyed by
// profile name (ignoring case, as names compare). Implementations never
// write a token to a plain file, and never put one in an error or a log.
type TokenStore interface {
	// Get returns the profile's token, or ErrNotFound.
	Get(profile string) (string, error)
	// Set stores the profile's token, replacing any previous one.
	Set(profile, token string) error
	// Delete forgets the profile's token; ErrNotFound if there was none.
	Delete(profile string) error
}

// tokenKey checks a profile name and returns the key its token is stored
// under: the name in lowercase, since names are unique ignoring case.
func tokenKey(profile string) (string, error) {
	if err := ValidateName(profile); err != nil {
		return "", err
	}
	return strings.ToLower(profile), nil
}

// checkToken refuses a token no store keeps, without quoting it.
func checkToken(token string) error {
	switch {
	case token == "":
		return fmt.Errorf("%w: it is empty (use Delete to forget a session)", ErrInvalidToken)
	case len(token) > MaxTokenLength:
		return fmt.Errorf("%w: it is %d bytes long, more than the %d a keyring holds", ErrInvalidToken, len(token), MaxTokenLength)
	}
	return nil
}

// Memory is a TokenStore that keeps tokens in this process only, for when
// the system has no usable keyring: sessions end when Keydesk quits. Its
// String and GoString methods print no token, so a stray log line of the
// store cannot leak one. The zero Memory is empty and ready to use.
type Memory struct {
	mu     sync.Mutex
	tokens map[string]string // by tokenKey
}

var _ TokenStore = (*Memory)(nil)

// NewMemory returns an empty Memory store.
func NewMemory() *Memory { return &Memory{} }

// Get returns the profile's token, or ErrNotFound.
func (m *Memory) Get(profile string) (string, error) {
	k, err := tokenKey(profile)
	if err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tokens[k]
	if !ok {
		return "", ErrNotFound
	}
	return t, nil
}

// Set stores the profile's token, replacing any previous one.
func (m *Memory) Set(profile, token string) error {
	k, err := tokenKey(profile)
	if err != nil {
		return err
	}
	if err := checkToken(token); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tokens == nil {
		m.tokens = make(map[string]string)
	}
	m.tokens[k] = token
	return nil
}

// Delete forgets the profile's token; ErrNotFound if there was none.
func (m *Memory) Delete(profile string) error {
	k, err := tokenKey(profile)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.tokens[k]; !ok {
		return ErrNotFound
	}
	delete(m.tokens, k)
	return nil
}

// String describes the store without its tokens.
func (m *Memory) String() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return fmt.Sprintf("profile.Memory(%d tokens)", len(m.tokens))
}

// GoString describes the store for %#v, without its tokens.
func (m *Memory) GoString() string { return m.String() }
