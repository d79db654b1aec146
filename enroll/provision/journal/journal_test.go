package journal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	// batch is the header every test opens with unless it says otherwise.
	batch = Header{
		Batch:   "2026-05-onboarding",
		Service: "https://id.example.com",
		Created: time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC),
	}
	// headerText is batch's header line as Open writes it.
	headerText = `{"journal":"keydesk-provision/1","batch":"2026-05-onboarding","service":"https://id.example.com","created":"2026-05-04T09:00:00Z"}` + "\n"
)

// at is a time on the batch's day, minutes after it was created.
func at(min int) time.Time {
	return batch.Created.Add(time.Duration(min) * time.Minute)
}

// line is r as the journal writes it.
func line(t *testing.T, r Record) string {
	t.Helper()
	b, err := encodeLine(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// journalPath is a path for a journal in a fresh directory.
func journalPath(t *testing.T) string {
	return filepath.Join(t.TempDir(), "journal.jsonl")
}

// writeFile writes a journal file by hand.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// readFile returns the file's content or fails the test.
func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// mustOpen opens the journal at path with batch's header or fails the test.
func mustOpen(t *testing.T, path string) (*Journal, Header, []Record) {
	t.Helper()
	j, h, records, err := Open(path, batch)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { j.Close() })
	return j, h, records
}

// mustAppend appends records or fails the test.
func mustAppend(t *testing.T, j *Journal, records ...Record) {
	t.Helper()
	for _, r := range records {
		if err := j.Append(r); err != nil {
			t.Fatalf("Append(%+v): %v", r, err)
		}
	}
}

// sameRecords fails the test unless got and want are equal.
func sameRecords(t *testing.T, got, want []Record) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("records:\n got %+v\nwant %+v", got, want)
	}
}

// golden are the records in testdata/v1.jsonl.
var golden = []Record{
	{Time: at(1), User: "alice@example.com", Event: Started, Nickname: "Alice's key", Model: "YubiKey 5 NFC", AAGUID: "2fc0579f-8113-47ea-b116-bb5a8db9202a"},
	{Time: at(1).Add(30*time.Second + 500*time.Millisecond), User: "alice@example.com", Event: Enrolled, Nickname: "Alice's key", Model: "YubiKey 5 NFC", AAGUID: "2fc0579f-8113-47ea-b116-bb5a8db9202a", CredentialID: "q83vEjRWeJA"},
	{Time: at(2), User: "alice@example.com", Event: Done},
	{Time: at(3), User: "Zoë Łukasik", Event: Started},
	{Time: at(3).Add(10 * time.Second), User: "Zoë Łukasik", Event: Failed, Error: `PIN <not set>: device "removed"`},
	{Time: at(4), User: "李雷", Event: Started},
	{Time: at(4).Add(20 * time.Second), User: "李雷", Event: Enrolled, CredentialID: "3q2-7w"},
	{Time: at(10), User: "李雷", Event: Revoked, CredentialID: "3q2-7w"},
}

// TestFormatV1 pins the file format: a journal written today must be
// readable by every later Keydesk that accepts the same marker, and one
// written by an earlier Keydesk must read the same today.
func TestFormatV1(t *testing.T) {
	want := readFile(t, filepath.Join("testdata", "v1.jsonl"))

	t.Run("ShouldWriteTheGoldenFile", func(t *testing.T) {
		path := journalPath(t)
		j, _, _ := mustOpen(t, path)
		mustAppend(t, j, golden...)
		if got := readFile(t, path); got != want {
			t.Errorf("file:\n%s\nwant (testdata/v1.jsonl):\n%s", got, want)
		}
	})
	t.Run("ShouldReadTheGoldenFile", func(t *testing.T) {
		path := journalPath(t)
		writeFile(t, path, want)
		_, h, records := mustOpen(t, path)
		if h != batch {
			t.Errorf("header = %+v, want %+v", h, batch)
		}
		sameRecords(t, records, golden)
	})
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		created time.Time
		records []Record
	}{
		{
			name:    "ShouldKeepRecordsAndHeader",
			created: batch.Created,
			records: golden,
		},
		{
			name:    "ShouldKeepUserNamesThatNeedEscaping",
			created: batch.Created,
			records: []Record{
				{Time: at(1), User: `o"brien\admin`, Event: Started},
				{Time: at(2), User: "tab\tnew\nline", Event: Started},
				{Time: at(3), User: "<script>&amp;", Event: Started},
				{Time: at(4), User: "line\u2028separator", Event: Failed, Error: "nul \x00 byte"},
				{Time: at(5), User: "🔑 emoji", Event: Done},
			},
		},
		{
			name:    "ShouldFillZeroTimesInUTC",
			created: time.Time{},
			records: []Record{
				{User: "alice", Event: Started},
				{User: "alice", Event: Done},
			},
		},
		{
			name:    "ShouldStoreOtherZonesAsUTC",
			created: time.Date(2026, 5, 4, 11, 0, 0, 0, time.FixedZone("CEST", 2*60*60)),
			records: []Record{
				{Time: time.Date(2026, 5, 4, 11, 1, 0, 0, time.FixedZone("CEST", 2*60*60)), User: "bob", Event: Started},
			},
		},
		{
			name:    "ShouldOpenAJournalWithNoRecords",
			created: batch.Created,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := journalPath(t)
			h := batch
			h.Created = tt.created
			before := time.Now()
			j, created, records, err := Open(path, h)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if len(records) != 0 {
				t.Errorf("a new journal has records: %+v", records)
			}
			if tt.created.IsZero() {
				if created.Created.Before(before.Add(-time.Second)) || created.Created.After(time.Now()) {
					t.Errorf("Created = %v, want about now", created.Created)
				}
			} else if !created.Created.Equal(tt.created) {
				t.Errorf("Created = %v, want %v", created.Created, tt.created)
			}
			if created.Created.Location() != time.UTC {
				t.Errorf("Created is in %v, want UTC", created.Created.Location())
			}
			mustAppend(t, j, tt.records...)
			if err := j.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}

			_, reopened, got := mustOpen(t, path)
			if reopened != created {
				t.Errorf("header = %+v, want %+v", reopened, created)
			}
			if len(got) != len(tt.records) {
				t.Fatalf("read %d records, want %d", len(got), len(tt.records))
			}
			want := make([]Record, len(tt.records))
			for i, r := range tt.records {
				if r.Time.IsZero() {
					if got[i].Time.Before(before.Add(-time.Second)) || got[i].Time.After(time.Now()) {
						t.Errorf("record %d: time %v, want about now", i, got[i].Time)
					}
					r.Time = got[i].Time
				}
				r.Time = r.Time.UTC()
				want[i] = r
			}
			sameRecords(t, got, want)
		})
	}
}

func TestLast(t *testing.T) {
	tests := []struct {
		name    string
		records []Record
		want    map[string]Record
	}{
		{
			name: "ShouldBeEmptyForNoRecords",
			want: map[string]Record{},
		},
		{
			name:    "ShouldGiveEachUsersLatestRecord",
			records: golden,
			want: map[string]Record{
				"alice@example.com": golden[2],
				"Zoë Łukasik":       golden[4],
				"李雷":                golden[7],
			},
		},
		{
			name: "ShouldGoByOrderNotTime",
			records: []Record{
				{Time: at(5), User: "alice", Event: Failed, Error: "timeout"},
				{Time: at(1), User: "alice", Event: Started},
			},
			want: map[string]Record{"alice": {Time: at(1), User: "alice", Event: Started}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Last(tt.records); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Last = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestOpenShouldDropALastLineCutShort(t *testing.T) {
	kept := []Record{
		{Time: at(1), User: "alice", Event: Started},
		{Time: at(2), User: "alice", Event: Enrolled, CredentialID: "q83v"},
	}
	next := Record{Time: at(3), User: "alice", Event: Done}
	whole := line(t, next)
	tests := []struct {
		name string
		tail string
	}{
		{name: "PartialLine", tail: whole[:20]},
		{name: "PartialLineEndingInAnEscape", tail: `{"time":"2026-05-04T09:03:00Z","user":"al\`},
		{name: "ValidJSONWithoutNewline", tail: strings.TrimSuffix(whole, "\n")},
		{name: "ValidRecordPrefixWithoutNewline", tail: `{"time":"2026-05-04T09:03:00Z","user":"alice","event":"done"}`},
		{name: "ZerosFromALostWrite", tail: strings.Repeat("\x00", 90)},
		{name: "ZerosFromALostWriteWithNewline", tail: strings.Repeat("\x00", 90) + "\n"},
		{name: "InvalidJSONWithNewline", tail: `{"time":"2026-05-04T09:03:00Z","us` + "\n"},
		{name: "EmptyLine", tail: "\n"},
		{name: "OneByte", tail: "{"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := journalPath(t)
			good := headerText + line(t, kept[0]) + line(t, kept[1])
			writeFile(t, path, good+tt.tail)

			j, _, records := mustOpen(t, path)
			sameRecords(t, records, kept)
			if got := readFile(t, path); got != good {
				t.Errorf("file not truncated to its complete lines:\n%q\nwant\n%q", got, good)
			}
			mustAppend(t, j, next)
			j.Close()
			if got, want := readFile(t, path), good+whole; got != want {
				t.Errorf("file after Append:\n%q\nwant\n%q", got, want)
			}
			_, _, records = mustOpen(t, path)
			sameRecords(t, records, append(kept[:len(kept):len(kept)], next))
		})
	}
}

func TestOpenShouldStartAfreshAfterACutHeader(t *testing.T) {
	tests := []struct {
		name    string
		content string
	}{
		{name: "EmptyFile", content: ""},
		{name: "PartialMarker", content: `{"jou`},
		{name: "PartialHeader", content: headerText[:60]},
		{name: "WholeHeaderWithoutNewline", content: strings.TrimSuffix(headerText, "\n")},
		{name: "OtherBatchHeaderWithoutNewline", content: `{"journal":"keydesk-provision/1","batch":"other"`},
		{name: "Zeros", content: "\x00\x00\x00\x00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := journalPath(t)
			writeFile(t, path, tt.content)
			j, h, records := mustOpen(t, path)
			if h != batch {
				t.Errorf("header = %+v, want %+v", h, batch)
			}
			sameRecords(t, records, nil)
			r := Record{Time: at(1), User: "alice", Event: Started}
			mustAppend(t, j, r)
			if got, want := readFile(t, path), headerText+line(t, r); got != want {
				t.Errorf("file:\n%q\nwant\n%q", got, want)
			}
		})
	}
}

func TestOpenShouldRefuseADamagedFile(t *testing.T) {
	r1 := line(t, Record{Time: at(1), User: "alice", Event: Started})
	r2 := line(t, Record{Time: at(2), User: "alice", Event: Done})
	long := line(t, Record{Time: at(3), User: "bob", Event: Failed, Error: strings.Repeat("x", maxLine)})
	tests := []struct {
		name    string
		content string
		want    string // in the error
	}{
		{name: "GarbageInTheMiddle", content: headerText + r1 + "garbage\n" + r2, want: "line 3"},
		{name: "CutLineInTheMiddle", content: headerText + r1[:30] + "\n" + r2, want: "line 2"},
		{name: "TwoRecordsRunTogether", content: headerText + strings.TrimSuffix(r1, "\n") + r2 + r2, want: "line 2"},
		{name: "EmptyLineInTheMiddle", content: headerText + r1 + "\n" + r2, want: "line 3"},
		{name: "TwoBadLastLines", content: headerText + r1 + "{\n{\n", want: "line 3"},
		{name: "UnknownEvent", content: headerText + strings.Replace(r1, `"started"`, `"paused"`, 1) + r2, want: "line 2"},
		{name: "UnknownEventOnTheLastLine", content: headerText + r1 + strings.Replace(r2, `"done"`, `"paused"`, 1), want: "line 3"},
		{name: "NoUser", content: headerText + r1 + strings.Replace(r2, `"user":"alice"`, `"user":""`, 1), want: "line 3"},
		{name: "NoTime", content: headerText + r1 + `{"user":"alice","event":"done"}` + "\n", want: "line 3"},
		{name: "UnknownField", content: headerText + r1 + `{"time":"2026-05-04T09:02:00Z","user":"alice","event":"done","pin":"1234"}` + "\n", want: "line 3"},
		{name: "WrongType", content: headerText + `{"time":"2026-05-04T09:02:00Z","user":7,"event":"done"}` + "\n" + r2, want: "line 2"},
		{name: "NotAnObject", content: headerText + "[]\n" + r2, want: "line 2"},
		{name: "Null", content: headerText + "null\n" + r2, want: "line 2"},
		{name: "LineTooLongInTheMiddle", content: headerText + long + r2, want: "line 2"},
		{name: "LineTooLongAtTheEnd", content: headerText + r1 + long, want: "line 3"},
		{name: "LineTooLongWithoutNewline", content: headerText + r1 + strings.TrimSuffix(long, "\n"), want: "line 3"},
		{name: "NotAJournal", content: "name,email\nalice,alice@example.com\n", want: "not a keydesk provisioning journal"},
		{name: "NotAJournalWithoutNewline", content: "name,email", want: "not a keydesk provisioning journal"},
		{name: "RecordAsHeader", content: r1 + r2, want: "not a keydesk provisioning journal"},
		{name: "HeaderNotJSON", content: headerText[:40] + "\n" + r1, want: "not a keydesk provisioning journal"},
		{name: "HeaderWithUnknownField", content: strings.Replace(headerText, `"batch"`, `"pin":"1","batch"`, 1) + r1, want: "line 1"},
		{name: "UnknownFormat", content: strings.Replace(headerText, "keydesk-provision/1", "keydesk-provision/2", 1) + r1, want: `unsupported journal format "keydesk-provision/2"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := journalPath(t)
			writeFile(t, path, tt.content)
			j, _, _, err := Open(path, batch)
			if err == nil {
				j.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
			if errors.Is(err, ErrOtherBatch) {
				t.Errorf("error %q is ErrOtherBatch", err)
			}
			if got := readFile(t, path); got != tt.content {
				t.Errorf("Open changed the file:\n%q\nwant\n%q", got, tt.content)
			}
		})
	}
}

func TestOpenShouldCheckTheBatch(t *testing.T) {
	content := headerText + line(t, Record{Time: at(1), User: "alice", Event: Started})
	tests := []struct {
		name  string
		h     Header
		other bool // ErrOtherBatch
	}{
		{name: "ShouldAcceptTheSameBatch", h: batch},
		{name: "ShouldIgnoreCreated", h: Header{Batch: batch.Batch, Service: batch.Service, Created: at(600)}},
		{name: "ShouldIgnoreZeroCreated", h: Header{Batch: batch.Batch, Service: batch.Service}},
		{name: "ShouldRefuseAnotherBatch", h: Header{Batch: "2026-06-onboarding", Service: batch.Service}, other: true},
		{name: "ShouldRefuseAnotherService", h: Header{Batch: batch.Batch, Service: "https://id.example.org"}, other: true},
		{name: "ShouldCompareExactly", h: Header{Batch: batch.Batch, Service: batch.Service + "/"}, other: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := journalPath(t)
			writeFile(t, path, content)
			j, h, records, err := Open(path, tt.h)
			if tt.other {
				if !errors.Is(err, ErrOtherBatch) {
					t.Fatalf("Open: %v, want ErrOtherBatch", err)
				}
				if got := readFile(t, path); got != content {
					t.Errorf("Open changed the file:\n%q", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer j.Close()
			if h != batch {
				t.Errorf("header = %+v, want the stored %+v", h, batch)
			}
			if len(records) != 1 {
				t.Errorf("records = %+v, want 1", records)
			}
		})
	}
}

func TestOpenShouldRefuseABadHeader(t *testing.T) {
	tests := []struct {
		name string
		h    Header
	}{
		{name: "NoBatch", h: Header{Service: batch.Service}},
		{name: "NoService", h: Header{Batch: batch.Batch}},
		{name: "TooLarge", h: Header{Batch: strings.Repeat("b", maxLine), Service: batch.Service}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := journalPath(t)
			if _, _, _, err := Open(path, tt.h); err == nil {
				t.Fatal("Open succeeded")
			}
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("Open created the file: %v", err)
			}
		})
	}
}

func TestOpenShouldCreateTheFileForTheOwnerOnly(t *testing.T) {
	path := journalPath(t)
	mustOpen(t, path)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// Windows has no Unix permission bits; the header is checked there too.
	if got := fi.Mode().Perm(); runtime.GOOS != "windows" && got != 0o600 {
		t.Errorf("mode = %v, want 0600", got)
	}
	if got := readFile(t, path); got != headerText {
		t.Errorf("new file:\n%q\nwant\n%q", got, headerText)
	}
}

func TestOpenShouldFailWithoutADirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "journal.jsonl")
	if _, _, _, err := Open(path, batch); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open: %v, want ErrNotExist", err)
	}
}

func TestAppendShouldRefuseABadRecord(t *testing.T) {
	tests := []struct {
		name string
		r    Record
	}{
		{name: "UnknownEvent", r: Record{Time: at(1), User: "alice", Event: "paused"}},
		{name: "NoEvent", r: Record{Time: at(1), User: "alice"}},
		{name: "EventInOtherCase", r: Record{Time: at(1), User: "alice", Event: "Done"}},
		{name: "NoUser", r: Record{Time: at(1), Event: Started}},
		{name: "UserNotUTF8", r: Record{Time: at(1), User: "al\xffice", Event: Started}},
		{name: "TooLarge", r: Record{Time: at(1), User: "alice", Event: Failed, Error: strings.Repeat("x", maxLine)}},
		{name: "TimeOutOfRange", r: Record{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), User: "alice", Event: Started}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := journalPath(t)
			j, _, _ := mustOpen(t, path)
			if err := j.Append(tt.r); err == nil {
				t.Fatal("Append succeeded")
			}
			if got := readFile(t, path); got != headerText {
				t.Errorf("Append wrote:\n%q", strings.TrimPrefix(got, headerText))
			}
			// The journal stays usable.
			r := Record{Time: at(2), User: "bob", Event: Started}
			mustAppend(t, j, r)
			if got, want := readFile(t, path), headerText+line(t, r); got != want {
				t.Errorf("file:\n%q\nwant\n%q", got, want)
			}
		})
	}
}

func TestAppendShouldAcceptTheLargestRecord(t *testing.T) {
	r := Record{Time: at(1), User: "alice", Event: Failed}
	r.Error = strings.Repeat("x", maxLine-len(line(t, r))-len(`,"error":""`))
	if n := len(line(t, r)); n != maxLine {
		t.Fatalf("test record is %d bytes, want %d", n, maxLine)
	}
	path := journalPath(t)
	j, _, _ := mustOpen(t, path)
	mustAppend(t, j, r)
	j.Close()
	_, _, records := mustOpen(t, path)
	sameRecords(t, records, []Record{r})
}

func TestAppendShouldTakeBackAFailedWrite(t *testing.T) {
	path := journalPath(t)
	j, _, _ := mustOpen(t, path)
	first := Record{Time: at(1), User: "alice", Event: Started}
	mustAppend(t, j, first)

	failure := errors.New("no space left on device")
	writeLine = func(f *os.File, b []byte) (int, error) {
		n, _ := f.Write(b[:len(b)/2])
		return n, failure
	}
	t.Cleanup(func() { writeLine = (*os.File).Write })
	if err := j.Append(Record{Time: at(2), User: "alice", Event: Enrolled, CredentialID: "q83v"}); !errors.Is(err, failure) {
		t.Fatalf("Append: %v, want %v", err, failure)
	}
	writeLine = (*os.File).Write

	second := Record{Time: at(3), User: "alice", Event: Failed, Error: "no space left on device"}
	mustAppend(t, j, second)
	j.Close()
	if got, want := readFile(t, path), headerText+line(t, first)+line(t, second); got != want {
		t.Errorf("file:\n%q\nwant\n%q", got, want)
	}
}

func TestCloseShouldStopAppends(t *testing.T) {
	j, _, _ := mustOpen(t, journalPath(t))
	if err := j.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := j.Append(Record{Time: at(1), User: "alice", Event: Started}); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Append after Close: %v, want ErrClosed", err)
	}
	if err := j.Close(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("second Close: %v, want ErrClosed", err)
	}
}

func TestAppendShouldBeSafeFromManyGoroutines(t *testing.T) {
	const workers, each = 8, 50
	path := journalPath(t)
	j, _, _ := mustOpen(t, path)
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				errs <- j.Append(Record{
					User:         fmt.Sprintf("user-%d", w),
					Event:        Failed,
					CredentialID: fmt.Sprint(i),
					Error:        strings.Repeat("e", 100*w), // lines of different lengths
				})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
	j.Close()

	_, _, records := mustOpen(t, path)
	if len(records) != workers*each {
		t.Fatalf("read %d records, want %d", len(records), workers*each)
	}
	next := make(map[string]int) // each worker's records stay in its order
	for _, r := range records {
		if want := fmt.Sprint(next[r.User]); r.CredentialID != want {
			t.Fatalf("%s: record %s, want %s", r.User, r.CredentialID, want)
		}
		next[r.User]++
	}
	if len(next) != workers {
		t.Errorf("records from %d workers, want %d", len(next), workers)
	}
}

// FuzzOpen writes arbitrary bytes after a valid header and opens the file.
// Open must not panic; when it fails it must leave the file as it was, and
// when it succeeds the journal must take a new record and read back the
// same records plus that one.
func FuzzOpen(f *testing.F) {
	r1 := `{"time":"2026-05-04T09:01:00Z","user":"alice","event":"started"}` + "\n"
	r2 := `{"time":"2026-05-04T09:02:00Z","user":"alice","event":"enrolled","credentialId":"q83v"}` + "\n"
	for _, seed := range []string{
		"",
		r1,
		r1 + r2,
		r1 + r2[:25],
		r1 + strings.TrimSuffix(r2, "\n"),
		r1 + "\x00\x00\x00",
		r1 + "\n",
		r1 + "{\n",
		r1 + "garbage\n" + r2,
		`{"time":"2026-05-04T11:01:00+02:00","user":"Zo\u00eb","event":"done"}` + "\n",
		"{\"time\":\"2026-05-04T09:01:00Z\",\"user\":\"al\xffice\",\"event\":\"failed\",\"error\":\"\\ud800\"}\n",
		`{"time":"2026-05-04T09:01:00Z","USER":"alice","user":"bob","event":"failed"}` + "\n",
		" \t" + r1,
		"null\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, tail []byte) {
		path := journalPath(t)
		content := append([]byte(headerText), tail...)
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		j, h, records, err := Open(path, batch)
		if err != nil {
			if got, rerr := os.ReadFile(path); rerr != nil || !bytes.Equal(got, content) {
				t.Fatalf("failed Open (%v) changed the file", err)
			}
			return
		}
		if h != batch {
			t.Errorf("header = %+v, want %+v", h, batch)
		}
		next := Record{Time: at(30), User: "fuzz", Event: Done}
		if err := j.Append(next); err != nil {
			t.Fatalf("Append: %v", err)
		}
		if err := j.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		j, h2, again, err := Open(path, batch)
		if err != nil {
			t.Fatalf("second Open: %v", err)
		}
		j.Close()
		if h2 != h {
			t.Errorf("second header = %+v, want %+v", h2, h)
		}
		want := append(records[:len(records):len(records)], next)
		if !reflect.DeepEqual(again, want) {
			t.Errorf("second Open:\n got %+v\nwant %+v", again, want)
		}
	})
}
