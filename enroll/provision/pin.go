package provision

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"unsafe"
)

// Alphabet is the set of characters a generated PIN is drawn from.
type Alphabet string

// The alphabets a policy can choose.
const (
	// Digits: every keyboard and phone can type them, and CTAP counts
	// each as one code point.
	Digits Alphabet = "0123456789"
	// Alphanumeric: upper-case letters and digits without the ones a
	// printed page lets people mistake for each other (0/O, 1/I/L, 5/S,
	// 8/B, 2/Z). About 4.9 bits a character, against 3.3 for digits.
	Alphanumeric Alphabet = "ACDEFGHJKMNPQRTUVWXY34679"
)

// ParseAlphabet reads an alphabet by name: "digits" or "alphanumeric".
func ParseAlphabet(name string) (Alphabet, error) {
	switch name {
	case "digits", "":
		return Digits, nil
	case "alphanumeric":
		return Alphanumeric, nil
	}
	return "", fmt.Errorf("provision: unknown PIN alphabet %q (digits, alphanumeric)", name)
}

// Name is the alphabet's name, as ParseAlphabet reads it.
func (a Alphabet) Name() string {
	if a == Alphanumeric {
		return "alphanumeric"
	}
	return "digits"
}

// PIN is a generated PIN. It never prints: String, GoString, a log value
// and JSON all say "[PIN]", so that a PIN put in a log line or an error
// by mistake shows nothing. Wipe overwrites it once the handover page is
// written.
//
// Go strings cannot be wiped, so reveal hands the platform a string that
// shares the PIN's bytes instead of a copy; Wipe therefore also blanks
// every string reveal returned, which must not be kept. What a key's
// library copies (libfido2's C strings, a software key's hashing) is
// outside our reach and is not wiped.
type PIN struct {
	b []byte
}

// errPINLength is a PIN length out of CTAP's bounds.
var errPINLength = errors.New("provision: a PIN is 4 to 63 characters")

// NewPIN draws a PIN of n characters from alphabet with crypto/rand,
// each character uniformly (rejection sampling, no modulo bias).
func NewPIN(n int, alphabet Alphabet) (*PIN, error) {
	// CTAP 2.1 §6.5.1: 4 to 63 code points, at most 63 bytes as UTF-8;
	// the alphabets are ASCII.
	if n < 4 || n > 63 {
		return nil, errPINLength
	}
	if len(alphabet) < 2 {
		return nil, errors.New("provision: a PIN alphabet has at least two characters")
	}
	b := make([]byte, n)
	max := big.NewInt(int64(len(alphabet)))
	for i := range b {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			return nil, fmt.Errorf("provision: random PIN: %w", err)
		}
		b[i] = alphabet[v.Int64()]
	}
	return &PIN{b: b}, nil
}

// reveal is the PIN as a string sharing its bytes (see PIN).
func (p *PIN) reveal() string {
	if p == nil || len(p.b) == 0 {
		return ""
	}
	return unsafe.String(&p.b[0], len(p.b))
}

// Bytes is the PIN itself, for the handover page; the slice is the PIN's
// own and is blanked by Wipe.
func (p *PIN) Bytes() []byte { return p.b }

// Len is the PIN's length in characters.
func (p *PIN) Len() int { return len(p.b) }

// Wipe overwrites the PIN with zeros and forgets it.
func (p *PIN) Wipe() {
	if p == nil {
		return
	}
	clear(p.b)
	p.b = nil
}

// Wiped reports whether Wipe ran.
func (p *PIN) Wiped() bool { return p == nil || p.b == nil }

// redacted is what a PIN prints as, everywhere.
const redacted = "[PIN]"

// String hides the PIN from fmt's %s and %v.
func (p *PIN) String() string { return redacted }

// GoString hides the PIN from %#v.
func (p *PIN) GoString() string { return redacted }

// LogValue hides the PIN from log/slog.
func (p *PIN) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON hides the PIN from encoding/json.
func (p *PIN) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// Format hides the PIN from every fmt verb, %x and %q included.
func (p *PIN) Format(f fmt.State, _ rune) { f.Write([]byte(redacted)) }
