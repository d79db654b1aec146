// Package audit keeps the relying party's tamper-evident record of state
// changes: it builds hash-chained entries, encodes them canonically,
// exports them as JSONL and verifies an export, leaving storage to the
// database layer.
//
// Every entry commits to the one before it: [Entry.Hash] is the SHA-256 of
// the entry's canonical encoding ([Entry.Canonical]), which includes
// [Entry.PrevHash], the previous entry's Hash (the zero [Digest] for the
// first entry). Editing, inserting, reordering or deleting an entry
// therefore breaks the chain at that point, and [Verify] says where and
// how; a store can check its rows in place with [Verifier]. The hash is
// unkeyed, so whoever can rewrite the whole log from some point onwards
// can also recompute the hashes after it; only a head hash kept
// elsewhere ([VerifyOptions.WantHead], [VerifyResult.Head]) catches that,
// and a truncated tail.
//
// The log must never hold a secret: [Chain.Next] refuses detail keys that
// look like one ([ErrSecretField]). Values cannot be checked, so callers
// record facts about secrets (an expiry, a use count), never the secrets.
package audit

// Limits on an entry's fields. They keep a JSONL line under
// [MaxLineBytes] even when every character needs escaping, and keep rows
// small in any database.
const (
	// MaxFieldBytes bounds Actor, Subject and RemoteAddr, in bytes of UTF-8.
	MaxFieldBytes = 256
	// MaxCredentialIDBytes bounds the decoded CredentialID: WebAuthn
	// credential IDs are at most 1023 bytes.
	MaxCredentialIDBytes = 1023
	// MaxDetails bounds the number of Details entries.
	MaxDetails = 16
	// MaxDetailKeyBytes bounds a Details key.
	MaxDetailKeyBytes = 64
	// MaxDetailValueBytes bounds a Details value, in bytes of UTF-8.
	MaxDetailValueBytes = 1024
	// MaxLineBytes bounds one JSONL line (without its newline), so that
	// [Verify] reads an export in bounded memory. Any valid entry fits.
	MaxLineBytes = 128 << 10
)
