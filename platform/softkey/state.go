package softkey

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/keydesk/keydesk/platform/atomicfile"
)

// ErrStateCorrupt is returned by New when the state file exists but cannot
// be read back: truncated, edited, or sealed with another key. The key never
// silently starts over, because that would destroy every credential on it.
var ErrStateCorrupt = errors.New("softkey state file is corrupt or was sealed with another key")

// stateMagic starts every state file; the version digit changes when the
// layout does.
var stateMagic = []byte("KEYDESK-SOFTKEY-1\n")

// state is everything that survives a power cycle: the keys, credentials,
// PIN verifier and counters. It is held in memory and written whole after
// every change.
type state struct {
	WrapKey       []byte          `json:"wrapKey"` // seals non-discoverable credential IDs
	AttCAKey      []byte          `json:"attCAKey"`
	AttCACert     []byte          `json:"attCACert"`
	AttKey        []byte          `json:"attKey"`
	AttCert       []byte          `json:"attCert"`
	SignCount     uint32          `json:"signCount"`
	PIN           *pinVerifier    `json:"pin,omitempty"`
	PINRetries    int             `json:"pinRetries"`
	UVRetries     int             `json:"uvRetries"`
	MinPINLength  int             `json:"minPINLength"`
	MinPINRPIDs   []string        `json:"minPINLengthRPIDs,omitempty"`
	ForcePINChg   bool            `json:"forcePINChange"`
	AlwaysUV      bool            `json:"alwaysUv"`
	EnterpriseAtt bool            `json:"enterpriseAttestation"`
	Credentials   []*residentCred `json:"credentials"`
	Fingerprints  []*fingerprint  `json:"fingerprints"`
}

// pinVerifier holds what checks a PIN without storing it: the
// specification's LEFT(SHA-256(PIN), 16) is itself run through HMAC with a
// per-key salt, so the file alone is no shortcut to the PIN.
type pinVerifier struct {
	Salt       []byte `json:"salt"`
	MAC        []byte `json:"mac"`
	CodePoints int    `json:"codePoints"` // the PIN's length, to enforce a raised minimum
}

// residentCred is a discoverable credential.
type residentCred struct {
	ID              []byte        `json:"id"`
	RPID            string        `json:"rpId"`
	RPName          string        `json:"rpName,omitempty"`
	UserID          []byte        `json:"userId"`
	UserName        string        `json:"userName,omitempty"`
	UserDisplayName string        `json:"userDisplayName,omitempty"`
	Alg             COSEAlgorithm `json:"alg"`
	Key             []byte        `json:"key"` // PKCS #8
	CredProtect     int           `json:"credProtect"`
	CredRandom      []byte        `json:"credRandom"` // hmac-secret, 64 bytes: with and without UV
	Created         uint64        `json:"created"`    // creation order, newest first in listings
}

// fingerprint is a simulated biometric template.
type fingerprint struct {
	ID   []byte `json:"id"`
	Name string `json:"name,omitempty"`
}

// store persists state to one file, sealed with AES-256-GCM so that a
// truncated or edited file is detected, and so the private keys inside
// never touch the disk in clear.
type store struct {
	path string
	aead cipher.AEAD
}

func newStore(path string, key []byte) (*store, error) {
	if path == "" {
		return nil, nil
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("softkey state key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &store{path: path, aead: aead}, nil
}

// load reads the state; it returns fs.ErrNotExist for a key never saved.
func (s *store) load() (*state, error) {
	b, err := os.ReadFile(s.path)
	if err != nil {
		return nil, err
	}
	n := s.aead.NonceSize()
	if len(b) < len(stateMagic)+n+s.aead.Overhead() || !bytes.HasPrefix(b, stateMagic) {
		return nil, fmt.Errorf("%w: %s", ErrStateCorrupt, s.path)
	}
	body := b[len(stateMagic):]
	plain, err := s.aead.Open(nil, body[:n], body[n:], stateMagic)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrStateCorrupt, s.path)
	}
	var st state
	dec := json.NewDecoder(bytes.NewReader(plain))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrStateCorrupt, s.path, err)
	}
	return &st, nil
}

// save writes the state atomically, mode 0600 (atomicfile.Write).
func (s *store) save(st *state) error {
	plain, err := json.Marshal(st)
	if err != nil {
		return err
	}
	nonce := randomBytes(s.aead.NonceSize())
	out := append(append([]byte{}, stateMagic...), nonce...)
	out = s.aead.Seal(out, nonce, plain, stateMagic)

	err = atomicfile.Write(s.path, func(w io.Writer) error {
		_, err := w.Write(out)
		return err
	})
	if err != nil {
		return fmt.Errorf("save softkey state: %w", err)
	}
	return nil
}

// isNotExist reports whether err says the state file is missing.
func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
