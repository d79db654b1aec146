package audit_test

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/keydesk/keydesk/rp/audit"
)

// verifyCase is one export and what Verify must say about it: nil for a
// log that verifies, otherwise the kind and where.
type verifyCase struct {
	name     string
	lines    func(t *testing.T, golden []string) []string
	opts     audit.VerifyOptions
	wantKind error
	wantLine int
	wantSeq  uint64
}

func runVerifyCases(t *testing.T, tests []verifyCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := joinLines(tt.lines(t, goldenLines(t)))
			res, err := tt.opts.Verify(strings.NewReader(in))
			if tt.wantKind == nil {
				if err != nil {
					t.Fatalf("Verify() = %v, want success", err)
				}
				return
			}
			var ve *audit.VerifyError
			if !errors.As(err, &ve) || !errors.Is(err, tt.wantKind) {
				t.Fatalf("Verify() = %v, want a VerifyError of kind %v", err, tt.wantKind)
			}
			if ve.Line != tt.wantLine || ve.Seq != tt.wantSeq {
				t.Errorf("error at line %d, seq %d; want line %d, seq %d (%v)", ve.Line, ve.Seq, tt.wantLine, tt.wantSeq, err)
			}
			if want := tt.wantLine - 1; tt.wantKind != audit.ErrHeadMismatch && res.Entries != want {
				t.Errorf("result covers %d entries, want the %d before the failure", res.Entries, want)
			}
		})
	}
}

// replaceIn returns golden with old replaced by new in line n (1-based),
// failing if old is not there.
func replaceIn(n int, old, new string) func(t *testing.T, golden []string) []string {
	return func(t *testing.T, golden []string) []string {
		t.Helper()
		if !strings.Contains(golden[n-1], old) {
			t.Fatalf("line %d has no %q", n, old)
		}
		golden[n-1] = strings.Replace(golden[n-1], old, new, 1)
		return golden
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	runVerifyCases(t, []verifyCase{
		{name: "ShouldAcceptTheUntouchedLog",
			lines: func(_ *testing.T, g []string) []string { return g }},
		{name: "ShouldDetectAnEditedActor",
			lines: replaceIn(7, `"actor":"bob"`, `"actor":"eve"`), wantKind: audit.ErrEdited, wantLine: 7, wantSeq: 7},
		{name: "ShouldDetectAnEditedDetail",
			lines: replaceIn(7, "lost on a train", "lost on a bus"), wantKind: audit.ErrEdited, wantLine: 7, wantSeq: 7},
		{name: "ShouldDetectAnEditedUseLimit",
			lines: replaceIn(2, `"maxUses":"1"`, `"maxUses":"9"`), wantKind: audit.ErrEdited, wantLine: 2, wantSeq: 2},
		{name: "ShouldDetectAnEditedAction",
			lines: replaceIn(5, `"login.failed"`, `"login.succeeded"`), wantKind: audit.ErrEdited, wantLine: 5, wantSeq: 5},
		{name: "ShouldDetectAnEditedTime",
			lines: replaceIn(3, "T09:31:", "T09:32:"), wantKind: audit.ErrEdited, wantLine: 3, wantSeq: 3},
		{name: "ShouldDetectAnEditedSeq",
			lines: replaceIn(3, `"seq":3,`, `"seq":4,`), wantKind: audit.ErrEdited, wantLine: 3, wantSeq: 4},
		{name: "ShouldDetectARemovedCredentialID",
			lines: replaceIn(4, `"credentialId":"AQIDBAUGBwgJCgsMDQ4PEA",`, ""), wantKind: audit.ErrEdited, wantLine: 4, wantSeq: 4},
		{name: "ShouldDetectAReplacedHash",
			lines: func(t *testing.T, g []string) []string {
				e := mustParse(t, g[2])
				e.Hash[0] ^= 1
				g[2] = mustLine(t, e)
				return g
			}, wantKind: audit.ErrEdited, wantLine: 3, wantSeq: 3},
		{name: "ShouldDetectAnEditedPrevHash",
			lines: func(t *testing.T, g []string) []string {
				e := mustParse(t, g[2])
				e.PrevHash[31] ^= 0x80
				g[2] = mustLine(t, e)
				return g
			}, wantKind: audit.ErrEdited, wantLine: 3, wantSeq: 3},
		{name: "ShouldDetectADeletedMiddleEntry",
			lines:    func(_ *testing.T, g []string) []string { return slices.Delete(g, 2, 3) },
			wantKind: audit.ErrBroken, wantLine: 3, wantSeq: 4},
		{name: "ShouldDetectADeletedFirstEntry",
			lines:    func(_ *testing.T, g []string) []string { return g[1:] },
			wantKind: audit.ErrBroken, wantLine: 1, wantSeq: 2},
		{name: "ShouldDetectSwappedEntries",
			lines:    func(_ *testing.T, g []string) []string { g[3], g[4] = g[4], g[3]; return g },
			wantKind: audit.ErrBroken, wantLine: 4, wantSeq: 5},
		{name: "ShouldDetectADuplicatedEntry",
			lines:    func(_ *testing.T, g []string) []string { return slices.Insert(g, 3, g[2]) },
			wantKind: audit.ErrBroken, wantLine: 4, wantSeq: 3},
		{name: "ShouldDetectAForgedEntryInserted",
			lines: func(t *testing.T, g []string) []string {
				prev := mustParse(t, g[1])
				forged, err := (audit.Chain{}).Next(&prev, audit.Entry{
					Time: prev.Time.Add(time.Second), Actor: "eve", ActorRole: audit.RoleAdmin,
					Action: audit.ActionRoleChanged, Subject: "eve", Details: map[string]string{"newRole": "admin"},
				})
				if err != nil {
					t.Fatal(err)
				}
				return slices.Insert(g, 2, mustLine(t, forged))
			}, wantKind: audit.ErrBroken, wantLine: 4, wantSeq: 3},
		{name: "ShouldDetectAnEntryFromAnotherLog",
			lines: func(t *testing.T, g []string) []string {
				other := chain(t, valid(), valid(), valid())
				g[2] = mustLine(t, other[2])
				return g
			}, wantKind: audit.ErrBroken, wantLine: 3, wantSeq: 3},
		{name: "ShouldDetectARenumberedEntryWithItsHashRecomputed",
			lines: func(t *testing.T, g []string) []string {
				e := mustParse(t, g[2])
				e.Seq = 4
				g[2] = mustLine(t, rehash(t, e))
				return g
			}, wantKind: audit.ErrGap, wantLine: 3, wantSeq: 4},
		{name: "ShouldDetectALogNotStartingAtSeq1",
			lines: func(t *testing.T, g []string) []string {
				e := mustParse(t, g[0])
				e.Seq = 100
				return []string{mustLine(t, rehash(t, e))}
			}, wantKind: audit.ErrGap, wantLine: 1, wantSeq: 100},
		{name: "ShouldDetectAnEntryNextWouldRefuse",
			lines: func(t *testing.T, g []string) []string {
				e := mustParse(t, g[1])
				e.Action = "grant.leaked"
				g[1] = mustLine(t, rehash(t, e))
				return g
			}, wantKind: audit.ErrMalformed, wantLine: 2, wantSeq: 2},
	})
}

// TestVerifyWithHead covers what the chain alone cannot see: entries cut
// from its end, or a tail rewritten from some point on.
func TestVerifyWithHead(t *testing.T) {
	entries := goldenEntries(t)
	head := entries[len(entries)-1].Hash.String()
	// rewriteAfterDeleting deletes entry 3 and re-chains the rest, as
	// someone with write access to the whole table could.
	rewriteAfterDeleting := func(t *testing.T, g []string) []string {
		es := goldenEntries(t)
		steps := slices.Delete(es, 2, 3)
		out := chain(t, steps...)
		var lines []string
		for _, e := range out {
			lines = append(lines, mustLine(t, e))
		}
		return lines
	}
	runVerifyCases(t, []verifyCase{
		{name: "ShouldAcceptTheLogEndingAtTheHead",
			lines: func(_ *testing.T, g []string) []string { return g }, opts: audit.VerifyOptions{WantHead: head}},
		{name: "ShouldMissATruncatedTailWithoutTheHead",
			lines: func(_ *testing.T, g []string) []string { return g[:len(g)-2] }},
		{name: "ShouldDetectATruncatedTailWithTheHead",
			lines:    func(_ *testing.T, g []string) []string { return g[:len(g)-2] },
			opts:     audit.VerifyOptions{WantHead: head},
			wantKind: audit.ErrHeadMismatch, wantLine: 5, wantSeq: 5},
		{name: "ShouldDetectAnEmptyExportWithTheHead",
			lines:    func(_ *testing.T, g []string) []string { return nil },
			opts:     audit.VerifyOptions{WantHead: head},
			wantKind: audit.ErrHeadMismatch, wantLine: 0, wantSeq: 0},
		{name: "ShouldAcceptAnEmptyExportWithTheZeroHead",
			lines: func(_ *testing.T, g []string) []string { return nil },
			opts:  audit.VerifyOptions{WantHead: strings.Repeat("0", 64)}},
		{name: "ShouldDetectALogThatGrewPastTheHead",
			lines:    func(_ *testing.T, g []string) []string { return g },
			opts:     audit.VerifyOptions{WantHead: entries[3].Hash.String()},
			wantKind: audit.ErrHeadMismatch, wantLine: 7, wantSeq: 7},
		{name: "ShouldMissARewrittenTailWithoutTheHead",
			lines: rewriteAfterDeleting},
		{name: "ShouldDetectARewrittenTailWithTheHead",
			lines:    rewriteAfterDeleting,
			opts:     audit.VerifyOptions{WantHead: head},
			wantKind: audit.ErrHeadMismatch, wantLine: 6, wantSeq: 6},
		{name: "ShouldReportTheChainErrorBeforeTheHead",
			lines:    func(_ *testing.T, g []string) []string { return slices.Delete(g, 2, 3) },
			opts:     audit.VerifyOptions{WantHead: head},
			wantKind: audit.ErrBroken, wantLine: 3, wantSeq: 4},
	})
}

func TestVerifyRefusesMalformedExports(t *testing.T) {
	secretEntry := func(t *testing.T, g []string) []string {
		prev := mustParse(t, g[0])
		e := audit.Entry{
			Version: audit.Version, Seq: 2, Time: prev.Time, Actor: "bob", ActorRole: audit.RoleHelpdesk,
			Action: audit.ActionGrantIssued, Subject: "alice", Details: map[string]string{"grant": "WXYZ-1234"},
			PrevHash: prev.Hash,
		}
		return []string{g[0], mustLine(t, rehash(t, e))}
	}
	runVerifyCases(t, []verifyCase{
		{name: "ShouldRefuseText", lines: replaceLine(2, "not json"),
			wantKind: audit.ErrMalformed, wantLine: 2},
		{name: "ShouldRefuseABlankLine", lines: func(_ *testing.T, g []string) []string { return slices.Insert(g, 1, "") },
			wantKind: audit.ErrMalformed, wantLine: 2},
		{name: "ShouldRefuseAnUnknownField", lines: replaceIn(2, `{"v":1,`, `{"v":1,"pin":"1234",`),
			wantKind: audit.ErrMalformed, wantLine: 2},
		{name: "ShouldRefuseADuplicateKeyHidingAnEdit", lines: replaceIn(2, `"actor":"bob"`, `"actor":"eve","actor":"bob"`),
			wantKind: audit.ErrMalformed, wantLine: 2, wantSeq: 2},
		{name: "ShouldDetectADuplicateKeyChangingTheContent", lines: replaceIn(2, `"actor":"bob"`, `"actor":"bob","actor":"eve"`),
			wantKind: audit.ErrEdited, wantLine: 2, wantSeq: 2},
		{name: "ShouldRefuseExtraSpaces", lines: replaceIn(2, `"seq":2`, `"seq": 2`),
			wantKind: audit.ErrMalformed, wantLine: 2, wantSeq: 2},
		{name: "ShouldRefuseAnotherKeyOrder", lines: replaceIn(1, `{"v":1,"seq":1,`, `{"seq":1,"v":1,`),
			wantKind: audit.ErrMalformed, wantLine: 1, wantSeq: 1},
		{name: "ShouldRefuseAnotherEscape", lines: replaceIn(1, "Å", `\u00c5`),
			wantKind: audit.ErrMalformed, wantLine: 1, wantSeq: 1},
		{name: "ShouldRefuseAnEmptyDetailsObject", lines: replaceIn(3, `"remoteAddr":"192.0.2.10:40000",`, `"remoteAddr":"192.0.2.10:40000","details":{},`),
			wantKind: audit.ErrMalformed, wantLine: 3, wantSeq: 3},
		{name: "ShouldRefuseCRLF", lines: func(_ *testing.T, g []string) []string { g[0] += "\r"; return g },
			wantKind: audit.ErrMalformed, wantLine: 1, wantSeq: 1},
		{name: "ShouldRefuseTrailingData", lines: func(_ *testing.T, g []string) []string { g[0] += " {}"; return g },
			wantKind: audit.ErrMalformed, wantLine: 1},
		{name: "ShouldRefuseUpperCaseHex", lines: func(_ *testing.T, g []string) []string {
			e := mustParse(t, g[1])
			g[1] = strings.Replace(g[1], e.Hash.String(), strings.ToUpper(e.Hash.String()), 1)
			return g
		}, wantKind: audit.ErrMalformed, wantLine: 2},
		{name: "ShouldRefuseAShortHash", lines: func(_ *testing.T, g []string) []string {
			e := mustParse(t, g[1])
			g[1] = strings.Replace(g[1], e.Hash.String(), e.Hash.String()[:62], 1)
			return g
		}, wantKind: audit.ErrMalformed, wantLine: 2},
		{name: "ShouldRefuseATimeWithAnOffset", lines: replaceIn(1, "T09:26:53.589793Z", "T10:26:53.589793+01:00"),
			wantKind: audit.ErrMalformed, wantLine: 1},
		{name: "ShouldRefuseATimeWithNanoseconds", lines: replaceIn(1, "T09:26:53.589793Z", "T09:26:53.589793000Z"),
			wantKind: audit.ErrMalformed, wantLine: 1},
		{name: "ShouldRefuseATimeWithoutFraction", lines: replaceIn(1, "T09:26:53.589793Z", "T09:26:53Z"),
			wantKind: audit.ErrMalformed, wantLine: 1},
		{name: "ShouldRefuseANegativeSeq", lines: replaceIn(1, `"seq":1,`, `"seq":-1,`),
			wantKind: audit.ErrMalformed, wantLine: 1},
		{name: "ShouldRefuseAStringSeq", lines: replaceIn(1, `"seq":1,`, `"seq":"1",`),
			wantKind: audit.ErrMalformed, wantLine: 1},
		{name: "ShouldRefuseAnotherVersion", lines: func(t *testing.T, g []string) []string {
			e := mustParse(t, g[0])
			e.Version = 2
			return []string{mustLine(t, e)}
		}, wantKind: audit.ErrMalformed, wantLine: 1, wantSeq: 1},
		{name: "ShouldRefuseAMissingVersion", lines: replaceIn(1, `{"v":1,`, `{`),
			wantKind: audit.ErrMalformed, wantLine: 1, wantSeq: 1},
		{name: "ShouldRefuseATruncatedLine", lines: func(_ *testing.T, g []string) []string {
			g[6] = g[6][:len(g[6])/2]
			return g
		}, wantKind: audit.ErrMalformed, wantLine: 7},
		{name: "ShouldRefuseALongLine", lines: replaceLine(3, "{"+strings.Repeat(" ", audit.MaxLineBytes)+"}"),
			wantKind: audit.ErrMalformed, wantLine: 3},
		{name: "ShouldRefuseALongLineAfterAGoodLog", lines: func(_ *testing.T, g []string) []string {
			return append(g, strings.Repeat("x", audit.MaxLineBytes+1))
		}, wantKind: audit.ErrMalformed, wantLine: 8},
		{name: "ShouldRefuseASecretDetailWrittenAroundNext", lines: secretEntry,
			wantKind: audit.ErrMalformed, wantLine: 2, wantSeq: 2},
	})

	t.Run("ShouldNameTheSecretField", func(t *testing.T) {
		in := joinLines(secretEntry(t, goldenLines(t)))
		_, err := audit.Verify(strings.NewReader(in))
		if !errors.Is(err, audit.ErrSecretField) {
			t.Fatalf("Verify() = %v, want it to wrap ErrSecretField", err)
		}
		if strings.Contains(err.Error(), "WXYZ-1234") {
			t.Errorf("error %q repeats the secret", err)
		}
	})
}

func replaceLine(n int, s string) func(t *testing.T, golden []string) []string {
	return func(_ *testing.T, g []string) []string { g[n-1] = s; return g }
}

func TestVerifyLineLimit(t *testing.T) {
	// Every input is malformed; what differs is whether the line was
	// read whole (and refused as JSON) or cut off at the limit.
	tests := []struct {
		name string
		in   string
	}{
		{"ShouldReadALineOfExactlyTheLimit", strings.Repeat(" ", audit.MaxLineBytes) + "\n"},
		{"ShouldRefuseALineOverTheLimit", strings.Repeat(" ", audit.MaxLineBytes+1) + "\n"},
		{"ShouldRefuseALastLineOverTheLimit", strings.Repeat(" ", audit.MaxLineBytes+1)},
		{"ShouldRefuseALastLineOverTheBuffer", strings.Repeat(" ", 3*audit.MaxLineBytes)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := audit.Verify(strings.NewReader(tt.in))
			var ve *audit.VerifyError
			if !errors.As(err, &ve) || ve.Kind != audit.ErrMalformed || ve.Line != 1 {
				t.Fatalf("Verify() = %v, want ErrMalformed at line 1", err)
			}
			tooLong := strings.Contains(err.Error(), "longer than")
			if wantTooLong := len(strings.TrimSuffix(tt.in, "\n")) > audit.MaxLineBytes; tooLong != wantTooLong {
				t.Errorf("Verify() = %v; too long: %v, want %v", err, tooLong, wantTooLong)
			}
		})
	}
}

// TestLargestEntryFitsALine builds the longest entry Next accepts, every
// character needing the longest JSON escape, and checks that its line
// fits MaxLineBytes and verifies.
func TestLargestEntryFitsALine(t *testing.T) {
	e := valid()
	e.Actor = strings.Repeat("\u2028", audit.MaxFieldBytes/3)
	e.Subject = e.Actor
	e.RemoteAddr = e.Actor
	e.CredentialID = strings.Repeat("A", 1364)
	e.Action = audit.ActionCounterRegressed
	e.Details = map[string]string{}
	for i := range audit.MaxDetails {
		k := strings.Repeat("k", audit.MaxDetailKeyBytes-2) + string(rune('a'+i/10)) + string(rune('a'+i%10))
		e.Details[k] = strings.Repeat("\x01", audit.MaxDetailValueBytes)
	}
	entries := chain(t, e)
	var buf bytes.Buffer
	if err := audit.WriteJSONL(&buf, slices.Values(entries)); err != nil {
		t.Fatal(err)
	}
	if n := buf.Len() - 1; n > audit.MaxLineBytes {
		t.Fatalf("largest line is %d bytes, MaxLineBytes is %d", n, audit.MaxLineBytes)
	} else {
		t.Logf("largest line: %d bytes of %d", n, audit.MaxLineBytes)
	}
	if _, err := audit.Verify(&buf); err != nil {
		t.Fatalf("Verify() = %v", err)
	}
}

func TestVerifyResult(t *testing.T) {
	entries := goldenEntries(t)
	golden := readGolden(t)
	tests := []struct {
		name string
		in   []byte
		want audit.VerifyResult
	}{
		{"ShouldReportTheWholeLog", golden,
			audit.VerifyResult{Entries: 7, LastSeq: 7, Head: entries[6].Hash}},
		{"ShouldAcceptAMissingLastNewline", bytes.TrimSuffix(golden, []byte("\n")),
			audit.VerifyResult{Entries: 7, LastSeq: 7, Head: entries[6].Hash}},
		{"ShouldAcceptAnEmptyExport", nil, audit.VerifyResult{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := audit.Verify(iotest.OneByteReader(bytes.NewReader(tt.in)))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Verify() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestVerifyPassesOnReadAndOptionErrors(t *testing.T) {
	boom := errors.New("disk on fire")
	t.Run("ShouldReturnTheReadError", func(t *testing.T) {
		r := io.MultiReader(bytes.NewReader(readGolden(t)), iotest.ErrReader(boom))
		res, err := audit.Verify(r)
		var ve *audit.VerifyError
		if !errors.Is(err, boom) || errors.As(err, &ve) {
			t.Fatalf("Verify() = %v, want the read error, not a VerifyError", err)
		}
		if res.Entries != 7 {
			t.Errorf("result covers %d entries, want 7", res.Entries)
		}
	})
	t.Run("ShouldReturnTheReadErrorNotAMalformedLine", func(t *testing.T) {
		golden := readGolden(t)
		r := io.MultiReader(bytes.NewReader(golden[:len(golden)-40]), iotest.ErrReader(boom))
		res, err := audit.Verify(r)
		var ve *audit.VerifyError
		if !errors.Is(err, boom) || errors.As(err, &ve) {
			t.Fatalf("Verify() = %v, want the read error, not a VerifyError", err)
		}
		if res.Entries != 6 {
			t.Errorf("result covers %d entries, want 6", res.Entries)
		}
	})
	for _, head := range []string{"xyz", strings.Repeat("A", 64), strings.Repeat("0", 63)} {
		t.Run("ShouldRefuseWantHead_"+head[:3], func(t *testing.T) {
			_, err := audit.VerifyOptions{WantHead: head}.Verify(bytes.NewReader(readGolden(t)))
			var ve *audit.VerifyError
			if err == nil || errors.As(err, &ve) {
				t.Fatalf("Verify() = %v, want an option error", err)
			}
		})
	}
}

// TestVerifierInPlace is the path a store takes to verify its own rows
// without exporting them.
func TestVerifierInPlace(t *testing.T) {
	entries := goldenEntries(t)
	var v audit.Verifier
	for _, e := range entries {
		if err := v.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.CheckHead(entries[len(entries)-1].Hash); err != nil {
		t.Fatal(err)
	}

	var bad audit.Verifier
	if err := bad.Add(entries[0]); err != nil {
		t.Fatal(err)
	}
	err := bad.Add(entries[2])
	if !errors.Is(err, audit.ErrBroken) {
		t.Fatalf("Add(seq 3 after seq 1) = %v, want ErrBroken", err)
	}
	if again := bad.Add(entries[1]); again != err {
		t.Errorf("Add after a failure = %v, want the first failure again", again)
	}
	if head := bad.CheckHead(entries[0].Hash); head != err {
		t.Errorf("CheckHead after a failure = %v, want the first failure again", head)
	}
	if got := bad.Result(); got.Entries != 1 || got.Head != entries[0].Hash {
		t.Errorf("Result() = %+v, want the one entry before the failure", got)
	}
}

func TestEntryJSONRoundTrip(t *testing.T) {
	for _, e := range goldenEntries(t) {
		b, err := e.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var got audit.Entry
		if err := got.UnmarshalJSON(b); err != nil {
			t.Fatalf("UnmarshalJSON(%s) = %v", b, err)
		}
		if h, err := got.ComputeHash(); err != nil || h != e.Hash {
			t.Errorf("seq %d does not survive JSON: hash %s, %v", e.Seq, h, err)
		}
		if !got.Time.Equal(e.Time) || got.Time.Location() != time.UTC {
			t.Errorf("seq %d: Time %v, want %v in UTC", e.Seq, got.Time, e.Time)
		}
	}
}

func TestParseDigest(t *testing.T) {
	d := audit.Digest{0: 0x01, 31: 0xfe}
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"ShouldReadLowercaseHex", d.String(), true},
		{"ShouldRefuseUppercaseHex", strings.ToUpper(d.String()), false},
		{"ShouldRefuseShortHex", d.String()[:63], false},
		{"ShouldRefuseLongHex", d.String() + "0", false},
		{"ShouldRefuseBase64", "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAP4=", false},
		{"ShouldRefuseEmpty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := audit.ParseDigest(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("ParseDigest(%q) = %v, want ok %v", tt.in, err, tt.ok)
			}
			if tt.ok && got != d {
				t.Errorf("ParseDigest(%q) = %s, want %s", tt.in, got, d)
			}
		})
	}
}
