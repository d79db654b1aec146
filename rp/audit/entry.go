package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"time"
)

// Version is the encoding [Chain.Next] writes: the layout of
// [Entry.Canonical] and of the JSONL line. A new layout gets a new number
// so that entries written under the old one keep verifying.
const Version = 1

// canonicalTagV1 starts every version 1 canonical encoding, so that a
// hash of an audit entry can never be mistaken for a hash of anything
// else, nor of another version.
const canonicalTagV1 = "keydesk.audit.v1"

// timeLayout writes Time in UTC with exactly six fractional digits, so
// that every instant has exactly one spelling in an export.
const timeLayout = "2006-01-02T15:04:05.000000Z"

// Digest is a SHA-256 hash in the chain. It is written, in JSON and by
// String, as 64 lowercase hex digits; the zero Digest is the PrevHash of
// the first entry.
type Digest [sha256.Size]byte

// ParseDigest reads the 64 lowercase hex digits that String writes. Upper
// case is refused so that each Digest has one spelling in an export.
func ParseDigest(s string) (Digest, error) {
	var d Digest
	if len(s) != hex.EncodedLen(len(d)) {
		return d, fmt.Errorf("audit: digest has %d characters, want %d", len(s), hex.EncodedLen(len(d)))
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return d, fmt.Errorf("audit: digest: character %d is not a lowercase hex digit", i)
		}
	}
	if _, err := hex.Decode(d[:], []byte(s)); err != nil {
		return Digest{}, fmt.Errorf("audit: digest: %w", err)
	}
	return d, nil
}

// String returns the 64 lowercase hex digits of d.
func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// IsZero reports whether d is all zero bytes: the genesis PrevHash, or a
// Hash not yet computed.
func (d Digest) IsZero() bool { return d == Digest{} }

// MarshalText writes d as String does.
func (d Digest) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads d as ParseDigest does.
func (d *Digest) UnmarshalText(b []byte) error {
	v, err := ParseDigest(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Entry is one record of the audit log. [Chain.Next] fills Version, Seq,
// PrevHash and Hash and normalizes Time; a store keeps every field as it
// is and gives it back unchanged, or the entry no longer verifies.
type Entry struct {
	// Version is the encoding the entry was written with ([Version]).
	Version int
	// Seq numbers entries 1, 2, 3… with no gaps. It stays below 2^63 so
	// that it fits a signed 64-bit database column.
	Seq uint64
	// Time is when the change happened, in UTC and truncated to
	// microseconds, the precision SQLite and PostgreSQL keep.
	Time time.Time
	// Actor is who made the change: a user name, or for [RoleAnonymous]
	// the claimed user name or "anonymous". Required.
	Actor string
	// ActorRole is the capacity Actor acted in.
	ActorRole Role
	// Action is what happened.
	Action Action
	// Subject is the user the change affected, if any; often Actor.
	Subject string
	// CredentialID is the affected credential's ID in base64url without
	// padding, if any.
	CredentialID string
	// RemoteAddr is the client's address as the server saw it, if any.
	RemoteAddr string
	// Details hold the facts specific to Action, such as a revocation
	// reason or a new role. Keys that look like secrets are refused.
	Details map[string]string
	// PrevHash is the previous entry's Hash; zero for Seq 1.
	PrevHash Digest
	// Hash is SHA-256 of [Entry.Canonical].
	Hash Digest
}

// Canonical returns the bytes Hash is computed over: every field but Hash,
// in an unambiguous binary layout that no JSON or database quirk can
// change. Version 1, with big-endian integers and str(s) meaning a uint32
// byte length followed by the bytes of s:
//
//	str("keydesk.audit.v1")
//	uint64 Seq
//	int64  Time as microseconds since the Unix epoch
//	str(Actor) str(ActorRole) str(Action) str(Subject) str(CredentialID) str(RemoteAddr)
//	uint32 number of Details, then str(key) str(value) for each, keys in byte order
//	32 bytes PrevHash
//
// Length prefixes rather than JSON keep the hash independent of escaping
// and key-order rules, and easy to recompute in any language. It fails
// only for an unknown Version or a Time finer than a microsecond; it does
// not otherwise check the entry.
func (e Entry) Canonical() ([]byte, error) {
	if e.Version != Version {
		return nil, &FieldError{Field: "v", Kind: ErrInvalid, Reason: fmt.Sprintf("unsupported encoding version %d", e.Version)}
	}
	if e.Time.Nanosecond()%int(time.Microsecond) != 0 {
		return nil, &FieldError{Field: "time", Kind: ErrInvalid, Reason: "finer than a microsecond"}
	}
	n := len(canonicalTagV1) + 8 + 8 + 6*4 + len(e.Actor) + len(e.ActorRole) + len(e.Action) +
		len(e.Subject) + len(e.CredentialID) + len(e.RemoteAddr) + 4 + len(e.PrevHash)
	for k, v := range e.Details {
		n += 8 + len(k) + len(v)
	}
	b := make([]byte, 0, n)
	var err error
	str := func(s string) {
		if len(s) > math.MaxUint32 {
			err = &FieldError{Field: "entry", Kind: ErrInvalid, Reason: "field longer than 4 GiB"}
			return
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	str(canonicalTagV1)
	b = binary.BigEndian.AppendUint64(b, e.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Time.UnixMicro()))
	str(e.Actor)
	str(string(e.ActorRole))
	str(string(e.Action))
	str(e.Subject)
	str(e.CredentialID)
	str(e.RemoteAddr)
	b = binary.BigEndian.AppendUint32(b, uint32(len(e.Details)))
	for _, k := range slices.Sorted(maps.Keys(e.Details)) {
		str(k)
		str(e.Details[k])
	}
	b = append(b, e.PrevHash[:]...)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// ComputeHash returns the SHA-256 of [Entry.Canonical], the value Hash
// must hold.
func (e Entry) ComputeHash() (Digest, error) {
	b, err := e.Canonical()
	if err != nil {
		return Digest{}, err
	}
	return sha256.Sum256(b), nil
}

// wireEntry is an Entry as one JSONL line. Field order is the line's key
// order.
type wireEntry struct {
	V            int               `json:"v"`
	Seq          uint64            `json:"seq"`
	Time         string            `json:"time"`
	Actor        string            `json:"actor"`
	ActorRole    Role              `json:"actorRole"`
	Action       Action            `json:"action"`
	Subject      string            `json:"subject,omitempty"`
	CredentialID string            `json:"credentialId,omitempty"`
	RemoteAddr   string            `json:"remoteAddr,omitempty"`
	Details      map[string]string `json:"details,omitempty"`
	PrevHash     Digest            `json:"prevHash"`
	Hash         Digest            `json:"hash"`
}

// MarshalJSON writes e as one line of a JSONL export: compact, keys in a
// fixed order (Details keys sorted), Time as 2006-01-02T15:04:05.000000Z,
// digests in lowercase hex, empty optional fields left out, and no HTML
// escaping. The same entry always gives the same bytes, which [Verify]
// relies on to refuse any other spelling.
func (e Entry) MarshalJSON() ([]byte, error) {
	w := wireEntry{
		V:            e.Version,
		Seq:          e.Seq,
		Time:         e.Time.UTC().Format(timeLayout),
		Actor:        e.Actor,
		ActorRole:    e.ActorRole,
		Action:       e.Action,
		Subject:      e.Subject,
		CredentialID: e.CredentialID,
		RemoteAddr:   e.RemoteAddr,
		Details:      e.Details,
		PrevHash:     e.PrevHash,
		Hash:         e.Hash,
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(w); err != nil {
		return nil, fmt.Errorf("audit: encode entry %d: %w", e.Seq, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// UnmarshalJSON reads what MarshalJSON writes, refusing unknown keys,
// trailing data, a Time in another layout and digests not in lowercase
// hex. It does not check the entry; [Verify] and [Verifier] do.
func (e *Entry) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var w wireEntry
	if err := dec.Decode(&w); err != nil {
		return fmt.Errorf("audit: decode entry: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("audit: decode entry: data after the entry")
	}
	t, err := time.Parse(timeLayout, w.Time)
	if err != nil {
		return fmt.Errorf("audit: decode entry: time: want the layout %s", timeLayout)
	}
	*e = Entry{
		Version:      w.V,
		Seq:          w.Seq,
		Time:         t,
		Actor:        w.Actor,
		ActorRole:    w.ActorRole,
		Action:       w.Action,
		Subject:      w.Subject,
		CredentialID: w.CredentialID,
		RemoteAddr:   w.RemoteAddr,
		Details:      w.Details,
		PrevHash:     w.PrevHash,
		Hash:         w.Hash,
	}
	return nil
}
