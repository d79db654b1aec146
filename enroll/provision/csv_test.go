package provision

import (
	"bytes"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadUsers(t *testing.T) {
	tests := []struct {
		name    string
		file    string // under testdata/users
		want    []User
		wantErr string
	}{
		{name: "ShouldReadNamesAndNicknamesUnderAHeader", file: "header.csv",
			want: []User{{Name: "alice", Nickname: "Alice's key"}, {Name: "bob"}, {Name: "carol", Nickname: "Laptop, desk 4"}}},
		{name: "ShouldReadBareNamesSkippingCommentsAndBlankLines", file: "bare.csv",
			want: []User{{Name: "dave"}, {Name: "erin@example.com"}}},
		{name: "ShouldRefuseAUserTwice", file: "duplicate.csv", wantErr: `line 3: "ALICE" is already on line 1`},
		{name: "ShouldRefuseThreeColumns", file: "columns.csv", wantErr: "line 2: 3 columns"},
		{name: "ShouldRefuseAnEmptyFile", file: "empty.csv", wantErr: "no users"},
		{name: "ShouldRefuseAnUnclosedQuote", file: "quote.csv", wantErr: "users CSV"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", "users", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got, err := ReadUsers(f)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("user %d: got %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// TestWriteResultsDefusesFormulas: names from a CSV an attacker may have
// touched reach a spreadsheet as text.
func TestWriteResultsDefusesFormulas(t *testing.T) {
	var b bytes.Buffer
	err := WriteResults(&b, []Result{
		{User: "=HYPERLINK(\"http://x\")", Status: StatusFailed, Error: "-2+3"},
		{User: "alice", Model: "Keydesk Software Key (virtual)", Status: StatusEnrolled, Handover: "pins/alice.pdf"},
	})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || strings.Join(recs[0], ",") != "user,nickname,key model,aaguid,credential id,status,error,pin handover" {
		t.Fatalf("records %q", recs)
	}
	if recs[1][0] != `'=HYPERLINK("http://x")` || recs[1][6] != "'-2+3" || recs[2][0] != "alice" || recs[2][7] != "pins/alice.pdf" {
		t.Fatalf("records %q", recs)
	}
}

// TestResultsRoundTrip: what WriteResults writes, ReadResults reads back
// as it was, formula-looking cells included.
func TestResultsRoundTrip(t *testing.T) {
	in := []Result{
		{User: "=cmd|' /C calc'!A0", Nickname: "+key", Model: "M", AAGUID: "a-b", CredentialID: "-id", Status: StatusFailed, Error: "@x, \"quoted\"\nline"},
		{User: "alice", Status: StatusEnrolled, Handover: "pins/alice.pdf"},
	}
	var b bytes.Buffer
	if err := WriteResults(&b, in); err != nil {
		t.Fatal(err)
	}
	got, err := ReadResults(&b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(in) || got[0] != in[0] || got[1] != in[1] {
		t.Fatalf("read back %+v, want %+v", got, in)
	}
	if _, err := ReadResults(strings.NewReader("name,x\n")); err == nil {
		t.Error("a CSV without a user column was read")
	}
}

// FuzzReadUsers: any input is read or refused, never a panic, and what is
// read has no empty or repeated name.
func FuzzReadUsers(f *testing.F) {
	for _, s := range []string{"user,nickname\nalice,k\n", "bob\n\n#c\ncarol", "\"a\"\"b\",c", "x,y,z", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		users, err := ReadUsers(strings.NewReader(in))
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, u := range users {
			k := strings.ToLower(u.Name)
			if u.Name == "" || seen[k] {
				t.Fatalf("users %+v", users)
			}
			seen[k] = true
		}
	})
}

// FuzzReadResults: a results file, edited or damaged, is read or refused,
// never a panic; what it reads, WriteResults writes back as it was read.
func FuzzReadResults(f *testing.F) {
	f.Add("user,nickname,key model,aaguid,credential id,status,error,pin handover\nalice,k,M,a,c,enrolled,,pins/alice.pdf\n")
	f.Add("user\n'=x\n")
	f.Add("status,user\nfailed,\"a\nb\"\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		results, err := ReadResults(strings.NewReader(in))
		if err != nil {
			return
		}
		var b bytes.Buffer
		if err := WriteResults(&b, results); err != nil {
			t.Fatal(err)
		}
		again, err := ReadResults(&b)
		if err != nil || len(again) != len(results) {
			t.Fatalf("rewritten results read back: %v, %d of %d", err, len(again), len(results))
		}
		for i := range results {
			if again[i] != results[i] {
				t.Fatalf("result %d: %+v, then %+v", i, results[i], again[i])
			}
		}
	})
}
