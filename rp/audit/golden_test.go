package audit_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/keydesk/keydesk/rp/audit"
)

// TestGoldenChain pins the export and, through the hashes in it, the
// canonical encoding: a change to either would orphan every stored log.
// Regenerate with go test -update only for a new Version.
func TestGoldenChain(t *testing.T) {
	var buf bytes.Buffer
	if err := audit.WriteJSONL(&buf, slices.Values(goldenEntries(t))); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(goldenPath, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := readGolden(t)
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("export changed; entries already stored would no longer verify.\ngot:\n%s\nwant:\n%s", buf.Bytes(), want)
	}
	res, err := audit.Verify(bytes.NewReader(want))
	if err != nil {
		t.Fatalf("Verify(golden) = %v", err)
	}
	entries := goldenEntries(t)
	last := entries[len(entries)-1]
	if res.Entries != len(entries) || res.LastSeq != last.Seq || res.Head != last.Hash {
		t.Errorf("Verify(golden) = %+v, want %d entries ending at seq %d, head %s", res, len(entries), last.Seq, last.Hash)
	}
}

// TestCanonicalLayout rebuilds the canonical bytes from the layout
// documented on Entry.Canonical, byte by byte, so that the documentation
// stays a specification another implementation can follow.
func TestCanonicalLayout(t *testing.T) {
	e := audit.Entry{
		Version:      audit.Version,
		Seq:          7,
		Time:         time.Date(2026, 1, 2, 3, 4, 5, 678901000, time.UTC),
		Actor:        "bob",
		ActorRole:    audit.RoleHelpdesk,
		Action:       audit.ActionCredentialRevoked,
		Subject:      "alice",
		CredentialID: "AQID",
		RemoteAddr:   "192.0.2.1:1",
		Details:      map[string]string{"z": "last", "a": "first", "B": "upper sorts first"},
		PrevHash:     audit.Digest{0: 0xaa, 31: 0xbb},
	}
	var want []byte
	str := func(s string) {
		want = binary.BigEndian.AppendUint32(want, uint32(len(s)))
		want = append(want, s...)
	}
	str("keydesk.audit.v1")
	want = binary.BigEndian.AppendUint64(want, 7)
	want = binary.BigEndian.AppendUint64(want, uint64(e.Time.UnixMicro()))
	for _, s := range []string{"bob", "helpdesk", "credential.revoked", "alice", "AQID", "192.0.2.1:1"} {
		str(s)
	}
	want = binary.BigEndian.AppendUint32(want, 3)
	for _, s := range []string{"B", "upper sorts first", "a", "first", "z", "last"} {
		str(s)
	}
	want = append(want, e.PrevHash[:]...)

	got, err := e.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Canonical() =\n%x\nwant\n%x", got, want)
	}
	h, err := e.ComputeHash()
	if err != nil {
		t.Fatal(err)
	}
	if h != sha256.Sum256(want) {
		t.Errorf("ComputeHash() = %s, want SHA-256 of the canonical bytes", h)
	}
}

// TestCanonicalFieldsAreUnambiguous checks that moving bytes from one
// field to the next changes the hash, which a plain concatenation would
// not.
func TestCanonicalFieldsAreUnambiguous(t *testing.T) {
	base := goldenEntries(t)[0]
	tests := []struct {
		name string
		a, b func(e *audit.Entry)
	}{
		{"ShouldSeparateActorFromSubject",
			func(e *audit.Entry) { e.Actor, e.Subject = "ab", "c" },
			func(e *audit.Entry) { e.Actor, e.Subject = "a", "bc" }},
		{"ShouldSeparateDetailKeyFromValue",
			func(e *audit.Entry) { e.Details = map[string]string{"ab": "c"} },
			func(e *audit.Entry) { e.Details = map[string]string{"a": "bc"} }},
		{"ShouldSeparateDetailsFromEachOther",
			func(e *audit.Entry) { e.Details = map[string]string{"a": "b", "c": ""} },
			func(e *audit.Entry) { e.Details = map[string]string{"a": "bc"} }},
		{"ShouldTellNilDetailsFromAnEmptyValue",
			func(e *audit.Entry) { e.Details = nil },
			func(e *audit.Entry) { e.Details = map[string]string{"a": ""} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := base, base
			tt.a(&a)
			tt.b(&b)
			ha, err := a.ComputeHash()
			if err != nil {
				t.Fatal(err)
			}
			hb, err := b.ComputeHash()
			if err != nil {
				t.Fatal(err)
			}
			if ha == hb {
				t.Errorf("both hash to %s", ha)
			}
		})
	}
}

// TestCanonicalRefusesWhatItCannotEncode: an unknown version or a time a
// database would round off has no canonical form.
func TestCanonicalRefusesWhatItCannotEncode(t *testing.T) {
	base := goldenEntries(t)[0]
	tests := []struct {
		name   string
		mutate func(e *audit.Entry)
	}{
		{"ShouldRefuseVersion0", func(e *audit.Entry) { e.Version = 0 }},
		{"ShouldRefuseVersion2", func(e *audit.Entry) { e.Version = 2 }},
		{"ShouldRefuseNanoseconds", func(e *audit.Entry) { e.Time = e.Time.Add(1) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := base
			tt.mutate(&e)
			if _, err := e.Canonical(); err == nil {
				t.Error("Canonical() succeeded")
			}
		})
	}
}
