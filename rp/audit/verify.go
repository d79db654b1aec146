package audit

import (
	"errors"
	"fmt"
	"strings"
)

// The ways an audit log can fail verification, matched with errors.Is on
// the *[VerifyError] that [Verify] and [Verifier] return.
var (
	// ErrEdited: an entry's Hash is not the hash of its content, so the
	// entry was changed after it was written.
	ErrEdited = errors.New("entry edited")
	// ErrBroken: an entry's PrevHash is not the previous entry's Hash, so
	// an entry was deleted, inserted or moved just before it.
	ErrBroken = errors.New("chain broken")
	// ErrGap: the chain links but Seq skips or repeats a number.
	ErrGap = errors.New("sequence gap")
	// ErrMalformed: a line is not an entry in the export format, or holds
	// an entry [Chain.Next] would have refused.
	ErrMalformed = errors.New("malformed entry")
	// ErrHeadMismatch: the log is intact but does not end at the expected
	// head: its tail was cut off, it continues past the head, or it is
	// another log.
	ErrHeadMismatch = errors.New("head mismatch")
)

// VerifyError says which entry failed verification and how.
type VerifyError struct {
	// Line is the entry's 1-based position: its line in a JSONL export.
	Line int
	// Seq is the sequence number the entry claims, 0 if it could not be
	// read.
	Seq uint64
	// Kind is [ErrEdited], [ErrBroken], [ErrGap], [ErrMalformed] or
	// [ErrHeadMismatch].
	Kind error
	// Reason says what was found, for people.
	Reason string
	// Err is the underlying cause, such as a *[FieldError], if any.
	Err error
}

// Error returns the position, the kind and the reason.
func (e *VerifyError) Error() string {
	if e.Seq == 0 {
		return fmt.Sprintf("audit: line %d: %v: %s", e.Line, e.Kind, e.Reason)
	}
	return fmt.Sprintf("audit: line %d, seq %d: %v: %s", e.Line, e.Seq, e.Kind, e.Reason)
}

// Is matches the error's Kind, so errors.Is(err, ErrEdited) works.
func (e *VerifyError) Is(target error) bool { return target == e.Kind }

// Unwrap returns the underlying cause.
func (e *VerifyError) Unwrap() error { return e.Err }

// VerifyResult describes the entries verified so far. Head is worth
// keeping somewhere the log's writer cannot reach: passed back as
// [VerifyOptions.WantHead], it is what catches a cut or rewritten tail.
type VerifyResult struct {
	// Entries is how many entries verified.
	Entries int
	// LastSeq is the last verified Seq, 0 when there is none; a whole
	// log starts at 1, so it equals Entries.
	LastSeq uint64
	// Head is the last verified entry's Hash, the zero Digest when there
	// are none.
	Head Digest
}

// Verifier checks entries one at a time in log order, for a store that
// verifies its rows in place; [Verify] uses it for JSONL. The zero
// Verifier expects the first entry of a log. After the first failure it
// returns that same error for every later call.
type Verifier struct {
	res    VerifyResult
	failed error
}

// Add checks e against the entries before it. Checks run in this order,
// and the first failure is returned as a *[VerifyError]:
//
//  1. The entry has a canonical encoding ([ErrMalformed]) and Hash is its
//     hash ([ErrEdited]), so a change to any field, Seq and PrevHash
//     included, shows here.
//  2. The entry is one [Chain.Next] would write ([ErrMalformed]).
//  3. PrevHash is the previous Hash, or zero for the first entry
//     ([ErrBroken]): a deletion, insertion or reordering shows here.
//  4. Seq is one more than the previous Seq, or 1 ([ErrGap]).
func (v *Verifier) Add(e Entry) error {
	if v.failed != nil {
		return v.failed
	}
	fail := func(kind error, cause error, format string, args ...any) error {
		v.failed = &VerifyError{Line: v.res.Entries + 1, Seq: e.Seq, Kind: kind, Reason: fmt.Sprintf(format, args...), Err: cause}
		return v.failed
	}
	h, err := e.ComputeHash()
	if err != nil {
		return fail(ErrMalformed, err, "%s", reason(err))
	}
	if h != e.Hash {
		return fail(ErrEdited, nil, "hash is %s but the content hashes to %s", e.Hash, h)
	}
	if err := e.validate(); err != nil {
		return fail(ErrMalformed, err, "%s", reason(err))
	}
	if e.PrevHash != v.res.Head {
		if v.res.Entries == 0 {
			return fail(ErrBroken, nil, "the first entry's prevHash is not zero: the entries before it are missing")
		}
		gap := ""
		if e.Seq != v.res.LastSeq+1 {
			gap = fmt.Sprintf(" (and seq %d follows seq %d)", e.Seq, v.res.LastSeq)
		}
		return fail(ErrBroken, nil, "prevHash is not the hash of seq %d before it%s: an entry was deleted, inserted or moved here", v.res.LastSeq, gap)
	}
	if e.Seq != v.res.LastSeq+1 {
		return fail(ErrGap, nil, "seq %d follows seq %d", e.Seq, v.res.LastSeq)
	}
	v.res.Entries++
	v.res.LastSeq = e.Seq
	v.res.Head = e.Hash
	return nil
}

// Result returns what has verified so far.
func (v *Verifier) Result() VerifyResult { return v.res }

// CheckHead reports, as a *[VerifyError] of kind [ErrHeadMismatch],
// whether the entries added so far end somewhere other than at want. A
// log always grows, so a head recorded earlier matches only a log that
// has not grown since; a tail cut off after want was recorded shows here
// and nowhere else.
func (v *Verifier) CheckHead(want Digest) error {
	if v.failed != nil {
		return v.failed
	}
	if v.res.Head == want {
		return nil
	}
	e := &VerifyError{Line: v.res.Entries, Seq: v.res.LastSeq, Kind: ErrHeadMismatch}
	if v.res.Entries == 0 {
		e.Reason = fmt.Sprintf("the log is empty, want head %s", want)
	} else {
		e.Reason = fmt.Sprintf("the log ends with hash %s, want %s: entries were cut from the end, the log grew since the head was recorded, or this is another log", v.res.Head, want)
	}
	return e
}

// reason is err's message without the package prefix, for a
// VerifyError's Reason, which Error prefixes again.
func reason(err error) string {
	return strings.TrimPrefix(err.Error(), "audit: ")
}
