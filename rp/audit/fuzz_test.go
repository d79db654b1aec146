package audit_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/keydesk/keydesk/rp/audit"
)

// FuzzVerify holds Verify to its promises on any input: it never panics;
// every failure is a *VerifyError of a documented kind at a line the
// input has; and whatever it accepts is exactly what WriteJSONL writes
// for the entries read back, and verifies again against its own head. So
// no spelling of an export can verify while showing a reader something
// the hashes do not cover.
func FuzzVerify(f *testing.F) {
	golden := readGolden(f)
	lines := goldenLines(f)
	f.Add(golden)
	f.Add([]byte{})
	f.Add([]byte("\n"))
	f.Add([]byte(lines[0]))
	f.Add([]byte(joinLines(lines[:3])))
	f.Add([]byte(joinLines(slices.Delete(slices.Clone(lines), 2, 3))))
	f.Add([]byte(joinLines([]string{lines[0], lines[2], lines[1]})))
	f.Add([]byte(strings.Replace(string(golden), "alice", "alicf", 1)))
	f.Add([]byte(strings.Replace(string(golden), `"seq":2`, `"seq": 2`, 1)))
	f.Add([]byte(strings.Replace(string(golden), `"v":1,`, `"v":1,"x":null,`, 1)))
	kinds := []error{audit.ErrEdited, audit.ErrBroken, audit.ErrGap, audit.ErrMalformed}
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := audit.Verify(bytes.NewReader(data))
		nlines := bytes.Count(data, []byte("\n"))
		if len(data) > 0 && data[len(data)-1] != '\n' {
			nlines++
		}
		if err != nil {
			var ve *audit.VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("Verify() = %v (%T), want a *VerifyError", err, err)
			}
			if !slices.ContainsFunc(kinds, func(k error) bool { return ve.Kind == k }) {
				t.Fatalf("Verify() = %v, kind %v is not documented", err, ve.Kind)
			}
			if ve.Line < 1 || ve.Line > nlines || res.Entries != ve.Line-1 {
				t.Fatalf("Verify() = %v at line %d of %d with %d entries verified", err, ve.Line, nlines, res.Entries)
			}
			return
		}
		if res.Entries != nlines {
			t.Fatalf("Verify() accepted %d entries from %d lines", res.Entries, nlines)
		}
		var entries []audit.Entry
		for line := range strings.Lines(string(data)) {
			var e audit.Entry
			if err := e.UnmarshalJSON([]byte(strings.TrimSuffix(line, "\n"))); err != nil {
				t.Fatalf("Verify() accepted a line UnmarshalJSON refuses: %v", err)
			}
			entries = append(entries, e)
		}
		var out bytes.Buffer
		if err := audit.WriteJSONL(&out, slices.Values(entries)); err != nil {
			t.Fatal(err)
		}
		want := data
		if len(want) > 0 && want[len(want)-1] != '\n' {
			want = append(slices.Clip(want), '\n')
		}
		if !bytes.Equal(out.Bytes(), want) {
			t.Fatalf("Verify() accepted %q, which WriteJSONL writes as %q", data, out.Bytes())
		}
		if _, err := (audit.VerifyOptions{WantHead: res.Head.String()}).Verify(bytes.NewReader(data)); err != nil {
			t.Fatalf("Verify() against its own head %s = %v", res.Head, err)
		}
	})
}
