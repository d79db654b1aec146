package audit_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keydesk/keydesk/rp/audit"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// goldenPath is the checked-in export whose bytes pin the encoding: if
// this test fails, entries already stored would no longer verify.
var goldenPath = filepath.Join("testdata", "chain.jsonl")

// goldenEntries builds the log behind testdata/chain.jsonl: one entry of
// most shapes, with sub-microsecond times, non-ASCII text and characters
// that JSON escapes.
func goldenEntries(tb testing.TB) []audit.Entry {
	tb.Helper()
	base := time.Date(2026, 3, 14, 9, 26, 53, 589793238, time.UTC)
	at := func(minutes int) time.Time { return base.Add(time.Duration(minutes) * time.Minute) }
	steps := []audit.Entry{
		{Time: at(0), Actor: "keydesk-rp", ActorRole: audit.RoleSystem, Action: audit.ActionUserCreated,
			Subject: "alice", Details: map[string]string{"role": "user", "displayName": "Alice Ångström"}},
		{Time: at(1), Actor: "bob", ActorRole: audit.RoleHelpdesk, Action: audit.ActionGrantIssued,
			Subject: "alice", RemoteAddr: "10.0.0.7:51234",
			Details: map[string]string{"expires": "2026-03-14T10:27:53Z", "maxUses": "1"}},
		{Time: at(5), Actor: "alice", ActorRole: audit.RoleAnonymous, Action: audit.ActionGrantRedeemed,
			Subject: "alice", RemoteAddr: "192.0.2.10:40000"},
		{Time: at(6), Actor: "alice", ActorRole: audit.RoleUser, Action: audit.ActionCredentialRegistered,
			Subject: "alice", CredentialID: "AQIDBAUGBwgJCgsMDQ4PEA", RemoteAddr: "192.0.2.10:40000",
			Details: map[string]string{"aaguid": "ee882879-721c-4913-9775-3dfcce97072a", "model": "YubiKey 5 NFC", "attestation": "packed"}},
		{Time: at(30), Actor: "alice", ActorRole: audit.RoleAnonymous, Action: audit.ActionLoginFailed,
			Subject: "alice", RemoteAddr: "[2001:db8::1]:443",
			Details: map[string]string{"reason": "the signature did not verify"}},
		{Time: at(31), Actor: "alice", ActorRole: audit.RoleUser, Action: audit.ActionCredentialRenamed,
			Subject: "alice", CredentialID: "AQIDBAUGBwgJCgsMDQ4PEA",
			Details: map[string]string{"oldNickname": "", "newNickname": "Work \"blue\" <NFC> & \\ more\n\u2028end"}},
		{Time: at(90), Actor: "bob", ActorRole: audit.RoleHelpdesk, Action: audit.ActionCredentialRevoked,
			Subject: "alice", CredentialID: "AQIDBAUGBwgJCgsMDQ4PEA", Details: map[string]string{"reason": "lost on a train"}},
	}
	return chain(tb, steps...)
}

// chain runs steps through Chain.Next, failing the test on any error.
func chain(tb testing.TB, steps ...audit.Entry) []audit.Entry {
	tb.Helper()
	var out []audit.Entry
	for _, s := range steps {
		var prev *audit.Entry
		if len(out) > 0 {
			prev = &out[len(out)-1]
		}
		e, err := (audit.Chain{}).Next(prev, s)
		if err != nil {
			tb.Fatalf("Next(seq %d): %v", len(out)+1, err)
		}
		out = append(out, e)
	}
	return out
}

// readGolden returns the golden export.
func readGolden(tb testing.TB) []byte {
	tb.Helper()
	b, err := os.ReadFile(goldenPath)
	if err != nil {
		tb.Fatalf("read golden export (run go test -update to create it): %v", err)
	}
	return b
}

// goldenLines returns the golden export's lines without their newlines.
func goldenLines(tb testing.TB) []string {
	tb.Helper()
	return strings.Split(strings.TrimSuffix(string(readGolden(tb)), "\n"), "\n")
}

// joinLines is the export made of lines.
func joinLines(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	return strings.Join(lines, "\n") + "\n"
}

// mustParse reads one export line.
func mustParse(tb testing.TB, line string) audit.Entry {
	tb.Helper()
	var e audit.Entry
	if err := e.UnmarshalJSON([]byte(line)); err != nil {
		tb.Fatalf("parse %q: %v", line, err)
	}
	return e
}

// mustLine writes one export line.
func mustLine(tb testing.TB, e audit.Entry) string {
	tb.Helper()
	b, err := e.MarshalJSON()
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// rehash recomputes e's Hash, as a forger without a key can.
func rehash(tb testing.TB, e audit.Entry) audit.Entry {
	tb.Helper()
	h, err := e.ComputeHash()
	if err != nil {
		tb.Fatal(err)
	}
	e.Hash = h
	return e
}
