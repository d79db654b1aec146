package audit

import (
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Errors [Chain.Next] returns, always inside a *[FieldError] that names
// the field. [Verify] wraps them too when an export holds an entry that
// Next would have refused.
var (
	// ErrInvalid: a field is missing, too long, not UTF-8, holds a control
	// character, or is not one of the known values.
	ErrInvalid = errors.New("invalid audit entry")
	// ErrSecretField: a Details key looks like it names a secret: it
	// contains token, grant, pin, secret, code, password, challenge,
	// signature, assertion or nonce, ignoring case and the separators
	// '_', '-' and '.'. The entry is refused outright so that a token, grant, PIN
	// or challenge response cannot reach the log by mistake.
	ErrSecretField = errors.New("detail key looks like a secret")
)

// FieldError is an entry refused because of one field. It names the
// field, never its value, so that it is safe to log even when the value
// was a secret.
type FieldError struct {
	// Field is the JSON name of the field, such as "actor" or
	// `details["pinCode"]`.
	Field string
	// Kind is [ErrInvalid] or [ErrSecretField].
	Kind error
	// Reason says what is wrong, for people.
	Reason string
}

// Error returns the field and the reason.
func (e *FieldError) Error() string {
	return "audit: " + e.Field + ": " + e.Reason
}

// Is matches the error's Kind, so errors.Is(err, ErrSecretField) works.
func (e *FieldError) Is(target error) bool { return target == e.Kind }

// secretWords are the substrings that make a Details key look like a
// secret. Matching is deliberately broad ("pin" also refuses "shipping"):
// a refused harmless key costs a rename, a logged secret costs a
// revocation.
var secretWords = []string{
	"token", "grant", "pin", "secret", "code", "password", "challenge", "signature", "assertion",
	// A recovery redeem's nonce is no secret, but what the desktop signs
	// has no business in the log either.
	"nonce",
}

// secretWord returns the secret-looking word in key, or "". Case and the
// separators '_', '-' and '.' are ignored, so "PIN_Code" and "p-i-n" are
// caught too.
func secretWord(key string) string {
	folded := strings.Map(func(r rune) rune {
		switch r {
		case '_', '-', '.':
			return -1
		}
		return unicode.ToLower(r)
	}, key)
	for _, w := range secretWords {
		if strings.Contains(folded, w) {
			return w
		}
	}
	return ""
}

// Chain writes entries onto the end of the log. It is pure: the store
// reads the last entry, calls Next, and inserts the result under a unique
// Seq, calling Next again on the new last entry if another instance
// appended first. Next trusts prev; checking stored entries is
// [Verifier]'s job.
type Chain struct {
	// Now gives the time of entries that come without one; nil means
	// time.Now. Tests pass a fake clock.
	Now func() time.Time
}

// Next returns e made ready to append after prev (nil for the first
// entry): it sets Version, Seq, PrevHash and Hash, whatever e held; sets
// Time from Now when zero and otherwise moves it to UTC truncated to
// microseconds; copies Details so that later changes to the caller's map
// cannot break the hash. It refuses, with a *[FieldError], an entry with
// an unknown Action or ActorRole, an empty Actor, a malformed
// CredentialID, fields over the Max limits or holding control characters,
// and Details keys that look like secrets ([ErrSecretField]).
func (c Chain) Next(prev *Entry, e Entry) (Entry, error) {
	e.Seq = 1
	e.PrevHash = Digest{}
	if prev != nil {
		if prev.Seq == 0 || prev.Seq >= math.MaxInt64 {
			return Entry{}, &FieldError{Field: "prev.seq", Kind: ErrInvalid, Reason: fmt.Sprintf("previous entry has seq %d", prev.Seq)}
		}
		if prev.Hash.IsZero() {
			return Entry{}, &FieldError{Field: "prev.hash", Kind: ErrInvalid, Reason: "previous entry has no hash"}
		}
		e.Seq = prev.Seq + 1
		e.PrevHash = prev.Hash
	}
	if e.Time.IsZero() {
		now := time.Now
		if c.Now != nil {
			now = c.Now
		}
		e.Time = now()
	}
	e.Time = e.Time.UTC().Truncate(time.Microsecond)
	if len(e.Details) == 0 {
		e.Details = nil
	} else {
		e.Details = maps.Clone(e.Details)
	}
	e.Version = Version
	e.Hash = Digest{}
	if err := e.validate(); err != nil {
		return Entry{}, err
	}
	h, err := e.ComputeHash()
	if err != nil {
		return Entry{}, err
	}
	e.Hash = h
	return e, nil
}

// Earliest and latest times an entry may carry: before 1970 is a clock
// that was never set, and after 9999 cannot be written in the export.
var (
	minTime = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)
)

// validate applies the rules Next promises to every field but the hashes.
func (e *Entry) validate() error {
	invalid := func(field, format string, args ...any) error {
		return &FieldError{Field: field, Kind: ErrInvalid, Reason: fmt.Sprintf(format, args...)}
	}
	if e.Version != Version {
		return invalid("v", "unsupported encoding version %d", e.Version)
	}
	if e.Seq == 0 || e.Seq > math.MaxInt64 {
		return invalid("seq", "%d is outside 1 to 2^63-1", e.Seq)
	}
	if e.Time.Before(minTime) || e.Time.After(maxTime) {
		return invalid("time", "outside the years 1970 to 9999")
	}
	if e.Time.Nanosecond()%int(time.Microsecond) != 0 {
		return invalid("time", "finer than a microsecond")
	}
	if e.Actor == "" {
		return invalid("actor", "must not be empty")
	}
	for _, f := range []struct{ name, value string }{
		{"actor", e.Actor}, {"subject", e.Subject}, {"remoteAddr", e.RemoteAddr},
	} {
		if err := checkText(f.value); err != "" {
			return invalid(f.name, "%s", err)
		}
	}
	if !e.ActorRole.Known() {
		return invalid("actorRole", "unknown role %.32q", e.ActorRole)
	}
	if !e.Action.Known() {
		return invalid("action", "unknown action %.64q", e.Action)
	}
	if e.CredentialID != "" {
		id, err := base64.RawURLEncoding.Strict().DecodeString(e.CredentialID)
		switch {
		case err != nil || base64.RawURLEncoding.EncodeToString(id) != e.CredentialID:
			return invalid("credentialId", "not base64url without padding")
		case len(id) > MaxCredentialIDBytes:
			return invalid("credentialId", "%d bytes, limit %d", len(id), MaxCredentialIDBytes)
		}
	}
	if len(e.Details) > MaxDetails {
		return invalid("details", "%d entries, limit %d", len(e.Details), MaxDetails)
	}
	for _, k := range slices.Sorted(maps.Keys(e.Details)) {
		v := e.Details[k]
		field := "details[" + strconv.Quote(k) + "]"
		if len(k) > MaxDetailKeyBytes {
			return invalid("details", "a key is %d bytes, limit %d", len(k), MaxDetailKeyBytes)
		}
		if k == "" {
			return invalid(field, "empty key")
		}
		for i := 0; i < len(k); i++ {
			if c := k[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
				return invalid(field, "keys hold only ASCII letters, digits, '_', '-' and '.'")
			}
		}
		if w := secretWord(k); w != "" {
			return &FieldError{Field: field, Kind: ErrSecretField,
				Reason: fmt.Sprintf("key contains %q, which looks like a secret; audit entries never hold secrets", w)}
		}
		switch {
		case len(v) > MaxDetailValueBytes:
			return invalid(field, "value is %d bytes, limit %d", len(v), MaxDetailValueBytes)
		case !utf8.ValidString(v):
			return invalid(field, "value is not UTF-8")
		case strings.IndexByte(v, 0) >= 0:
			return invalid(field, "value holds a NUL byte")
		}
	}
	return nil
}

// checkText returns what is wrong with an Actor, Subject or RemoteAddr,
// or "".
func checkText(s string) string {
	switch {
	case len(s) > MaxFieldBytes:
		return fmt.Sprintf("%d bytes, limit %d", len(s), MaxFieldBytes)
	case !utf8.ValidString(s):
		return "not UTF-8"
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return "holds a control character"
	}
	return ""
}
