// Package journal records the progress of a provisioning batch in an
// append-only file, so that a run stopped at any point (Ctrl-C, a crash,
// kill -9) can be resumed without enrolling anyone twice.
//
// The file holds one JSON object per line: a header naming the batch and
// the service, then one [Record] per step of a user's provisioning. It is
// read by people as well as by Keydesk, so it never holds a PIN or any
// other secret: only user names, key models and AAGUIDs, credential IDs
// and error text.
package journal

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"
	"unicode/utf8"
)

// format is the header's marker. A reader refuses a marker it does not
// know rather than misread a later layout as this one.
const format = "keydesk-provision/1"

// maxLine bounds a line, newline included, so that a damaged file cannot
// make Open buffer without limit. Append refuses a record that would not
// fit, so every line Keydesk wrote is within it.
const maxLine = 64 << 10

// Event is a step of one user's provisioning.
type Event string

// The events, in the order a user normally goes through them. A resumed
// run decides what to do with a user from their latest event (see [Last]).
const (
	// Started is written before a key is touched, so that a run stopped
	// from here on leaves a trace of the user it was working on.
	Started Event = "started"
	// Enrolled means the service stored the key's credential
	// (CredentialID set): from here on, an interrupted user has a
	// credential at the service that a resumed run must deal with.
	Enrolled Event = "enrolled"
	// Done means the user is finished (key verified, PIN handover
	// written) and a resumed run leaves them alone.
	Done Event = "done"
	// Failed means the run gave up on the user for now (Error set); a
	// resumed run tries them again.
	Failed Event = "failed"
	// Revoked means an interrupted user's half-provisioned credential
	// (CredentialID set) was revoked at the service, so trying them again
	// cannot leave them with two credentials.
	Revoked Event = "revoked"
)

// known reports whether e is one of the events above: a journal with any
// other event was written by something else, or edited.
func (e Event) known() bool {
	switch e {
	case Started, Enrolled, Done, Failed, Revoked:
		return true
	}
	return false
}

// Header identifies the batch a journal belongs to: a resumed run must be
// the same batch at the same service, or it would take another batch's
// progress for its own.
type Header struct {
	Batch   string    `json:"batch"`
	Service string    `json:"service"` // the service's origin
	Created time.Time `json:"created"`
}

// headerLine is the first line of the file: the header behind a format
// marker, so that the layout can change without old readers misreading it.
type headerLine struct {
	Journal string `json:"journal"`
	Header
}

// Record is one line: one step of one user's provisioning.
type Record struct {
	Time         time.Time `json:"time"`
	User         string    `json:"user"`
	Event        Event     `json:"event"`
	Nickname     string    `json:"nickname,omitempty"`
	Model        string    `json:"model,omitempty"`
	AAGUID       string    `json:"aaguid,omitempty"`
	CredentialID string    `json:"credentialId,omitempty"`
	Error        string    `json:"error,omitempty"`
}

// check rejects a record that a resumed run could not act on. The user
// name must be valid UTF-8 because JSON would otherwise replace the bad
// bytes, and the user read back would not be the user written.
func (r Record) check() error {
	switch {
	case r.User == "":
		return errors.New("record has no user")
	case !utf8.ValidString(r.User):
		return errors.New("user name is not valid UTF-8")
	case !r.Event.known():
		return fmt.Errorf("unknown event %q", r.Event)
	}
	return nil
}

// Journal appends records to a file, each written and fsynced before
// Append returns, so that a record a run has seen accepted survives a
// crash. It is safe for use by several goroutines.
type Journal struct {
	mu sync.Mutex
	// f is nil once the journal is closed.
	f *os.File // +checklocks:mu
	// size is the length of the complete lines in f: where the next line
	// goes, and what a failed write is cut back to.
	size int64 // +checklocks:mu
	// err is why the journal can take no more records: a failed write
	// that could not be taken back, or a failed fsync.
	err error // +checklocks:mu
}

// ErrOtherBatch is returned by [Open] when the file is the journal of
// another batch or of another service. Continuing would mix two batches'
// progress, so the caller must pick another output directory or the
// matching batch.
var ErrOtherBatch = errors.New("journal belongs to another batch")

// writeLine writes a whole line to f. It is a variable so that a test can
// make the write fail halfway.
var writeLine = (*os.File).Write

// Open opens the journal at path, creating it (mode 0600, and its header
// line) when absent, and returns the header stored in it and the records
// already in it, in order. When creating, a zero h.Created is set to the
// current time.
//
// An existing journal whose header differs from h in Batch or Service is
// [ErrOtherBatch] (h.Created is ignored when comparing). A last line cut
// short by a crash (no trailing newline, or not valid JSON) is dropped and
// the file truncated back to the last complete line, so that the next
// Append starts a clean line; a file whose header line itself was cut
// short holds no records and is started afresh. Any other bad line is an
// error naming its line number, and the file is left as it is: it was
// edited or damaged, and guessing could enroll someone twice.
func Open(path string, h Header) (*Journal, Header, []Record, error) {
	if h.Batch == "" || h.Service == "" {
		return nil, Header{}, nil, errors.New("journal: header needs a batch and a service")
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	created := err == nil
	if errors.Is(err, fs.ErrExist) {
		f, err = os.OpenFile(path, os.O_RDWR, 0)
	}
	if err != nil {
		return nil, Header{}, nil, fmt.Errorf("journal: %w", err)
	}
	j, stored, records, err := open(f, path, h, created)
	if err != nil {
		f.Close()
		if created {
			// Leave nothing behind, so that the next Open starts as
			// this one did rather than from a file without a header.
			os.Remove(path)
		}
		return nil, Header{}, nil, err
	}
	return j, stored, records, nil
}

// open reads or starts the journal in f, which Open created or found.
func open(f *os.File, path string, h Header, created bool) (*Journal, Header, []Record, error) {
	c := contents{fresh: created}
	if !created {
		var err error
		if c, err = read(f, path, h); err != nil {
			return nil, Header{}, nil, err
		}
	}
	if c.fresh {
		var err error
		if c.header, c.size, err = start(f, h); err != nil {
			return nil, Header{}, nil, fmt.Errorf("journal %s: %w", path, err)
		}
	} else if c.cut {
		if err := truncate(f, c.size); err != nil {
			return nil, Header{}, nil, fmt.Errorf("journal %s: dropping a line cut short: %w", path, err)
		}
	}
	if _, err := f.Seek(c.size, io.SeekStart); err != nil {
		return nil, Header{}, nil, fmt.Errorf("journal %s: %w", path, err)
	}
	return &Journal{f: f, size: c.size}, c.header, c.records, nil
}

// start writes the header line to the empty (or emptied) file f and makes
// the file durable. It returns the header written and the file's size.
func start(f *os.File, h Header) (Header, int64, error) {
	if h.Created.IsZero() {
		h.Created = time.Now()
	}
	h.Created = h.Created.UTC()
	line, err := encodeLine(headerLine{Journal: format, Header: h})
	if err != nil {
		return Header{}, 0, err
	}
	if len(line) > maxLine {
		// Written, it could not be read back.
		return Header{}, 0, fmt.Errorf("header is %d bytes, more than %d", len(line), maxLine)
	}
	if err := f.Truncate(0); err != nil {
		return Header{}, 0, err
	}
	if _, err := f.WriteAt(line, 0); err != nil {
		return Header{}, 0, err
	}
	if err := f.Sync(); err != nil {
		return Header{}, 0, err
	}
	if err := syncDir(filepath.Dir(f.Name())); err != nil {
		return Header{}, 0, err
	}
	return h, int64(len(line)), nil
}

// syncDir makes a new directory entry durable, so that a journal created
// just before a crash is still there after it. Linux can sync a directory;
// other systems (Windows) cannot, and there the error is ignored.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err == nil {
		err = d.Sync()
		d.Close()
	}
	if runtime.GOOS != "linux" {
		return nil
	}
	return err
}

// truncate cuts f back to size, durably, so that a fragment cannot come
// back after a crash to sit in front of the next line.
func truncate(f *os.File, size int64) error {
	if err := f.Truncate(size); err != nil {
		return err
	}
	return f.Sync()
}

// contents is what read found in an existing journal.
type contents struct {
	header  Header
	records []Record
	// size is the length of the complete lines: where the next line goes.
	size int64
	// cut is set when a last line cut short follows size and must be
	// dropped before appending.
	cut bool
	// fresh is set when the header line itself was cut short, so that the
	// file holds nothing and must be started again.
	fresh bool
}

// read reads the journal in f, checking its header against want. It does
// not change the file.
func read(f *os.File, path string, want Header) (contents, error) {
	var c contents
	// A buffer of maxLine bytes holds any line Keydesk writes;
	// ReadSlice reports a longer one as bufio.ErrBufferFull.
	br := bufio.NewReaderSize(f, maxLine)
	for n := 1; ; n++ {
		line, err := br.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			return contents{}, fmt.Errorf("journal %s: line %d is longer than %d bytes", path, n, maxLine)
		case err == io.EOF && n == 1:
			if !cutHeader(line) {
				return contents{}, fmt.Errorf("journal %s: not a keydesk provisioning journal", path)
			}
			c.fresh = true
			return c, nil
		case err == io.EOF:
			// Append writes a line and its newline in one call, so a
			// line without one is a write a crash cut short.
			c.cut = len(line) > 0
			return c, nil
		case err != nil:
			return contents{}, fmt.Errorf("journal %s: %w", path, err)
		}

		if n == 1 {
			h, err := decodeHeader(line)
			if err != nil {
				return contents{}, fmt.Errorf("journal %s: line 1: %w", path, err)
			}
			if h.Batch != want.Batch || h.Service != want.Service {
				return contents{}, fmt.Errorf("journal %s: %w: it is batch %q at %s, not batch %q at %s",
					path, ErrOtherBatch, h.Batch, h.Service, want.Batch, want.Service)
			}
			c.header = h
			c.size += int64(len(line))
			continue
		}

		if !json.Valid(line) {
			last, err := atEOF(br)
			if err != nil {
				return contents{}, fmt.Errorf("journal %s: %w", path, err)
			}
			if last {
				// A crash can leave a line's length on disk but not
				// its bytes; only the last line can be such a write.
				c.cut = true
				return c, nil
			}
			return contents{}, fmt.Errorf("journal %s: line %d is not valid JSON", path, n)
		}
		r, err := decodeRecord(line)
		if err != nil {
			return contents{}, fmt.Errorf("journal %s: line %d: %w", path, n, err)
		}
		c.records = append(c.records, r)
		c.size += int64(len(line))
	}
}

// atEOF reports whether br has nothing left to read.
func atEOF(br *bufio.Reader) (bool, error) {
	_, err := br.Peek(1)
	if err == io.EOF {
		return true, nil
	}
	return false, err
}

// cutHeader reports whether b, a file's whole content and without a
// newline, is a header line a crash cut short: empty, bytes the system
// never wrote (zeros), or the start of a header. Anything else is some
// other file, which Open must not overwrite.
func cutHeader(b []byte) bool {
	b = bytes.TrimRight(b, "\x00")
	prefix := []byte(`{"journal":`)
	return bytes.HasPrefix(prefix, b) || bytes.HasPrefix(b, prefix)
}

// decodeHeader parses a header line, refusing a format it does not know
// before looking at the rest.
func decodeHeader(line []byte) (Header, error) {
	var marker struct {
		Journal string `json:"journal"`
	}
	if err := json.Unmarshal(line, &marker); err != nil || marker.Journal == "" {
		return Header{}, errors.New("not a keydesk provisioning journal")
	}
	if marker.Journal != format {
		return Header{}, fmt.Errorf("unsupported journal format %q (this Keydesk reads %q)", marker.Journal, format)
	}
	var hl headerLine
	if err := decodeStrict(line, &hl); err != nil {
		return Header{}, fmt.Errorf("bad header: %w", err)
	}
	hl.Created = hl.Created.UTC()
	return hl.Header, nil
}

// decodeRecord parses a record line and checks it as Append would have.
func decodeRecord(line []byte) (Record, error) {
	var r Record
	if err := decodeStrict(line, &r); err != nil {
		return Record{}, err
	}
	if err := r.check(); err != nil {
		return Record{}, err
	}
	if r.Time.IsZero() {
		return Record{}, errors.New("record has no time")
	}
	r.Time = r.Time.UTC()
	return r, nil
}

// decodeStrict parses line into v, refusing fields v does not have: they
// mean a file written by something else, whose meaning we would lose.
func decodeStrict(line []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(line))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

// encodeLine returns v as one JSON line with its newline. HTML escaping is
// off so that error text stays readable in the file ("<", not "\u003c").
func encodeLine(v any) ([]byte, error) {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Append writes r as the journal's next line and fsyncs it. A zero r.Time
// is set to the current time. A record with an unknown Event or no User,
// or too large to be read back, is an error and nothing is written.
//
// If the write fails, the part of the line that reached the file is cut
// off again, since a fragment in the middle of the file would make it
// refuse to open. If that fails too, or the fsync fails (after which the
// system may have dropped the data and forgotten the error), the journal
// accepts no more records: only a new [Open] can tell what the file holds.
func (j *Journal) Append(r Record) error {
	if err := r.check(); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	r.Time = r.Time.UTC()
	line, err := encodeLine(r)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if len(line) > maxLine {
		return fmt.Errorf("journal: record for user %q is %d bytes, more than %d", r.User, len(line), maxLine)
	}

	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return fmt.Errorf("journal: append: %w", os.ErrClosed)
	}
	if j.err != nil {
		return fmt.Errorf("journal: append after an earlier failure: %w", j.err)
	}
	if _, err := writeLine(j.f, line); err != nil {
		if rerr := rollback(j.f, j.size); rerr != nil {
			j.err = err
		}
		return fmt.Errorf("journal: append: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		j.err = err
		return fmt.Errorf("journal: append: %w", err)
	}
	j.size += int64(len(line))
	return nil
}

// rollback cuts f back to size and puts the write offset there.
func rollback(f *os.File, size int64) error {
	if err := f.Truncate(size); err != nil {
		return err
	}
	_, err := f.Seek(size, io.SeekStart)
	return err
}

// Close closes the journal's file. Every record Append accepted is already
// on disk, so Close has nothing to flush.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return fmt.Errorf("journal: close: %w", os.ErrClosed)
	}
	err := j.f.Close()
	j.f = nil
	return err
}

// Last is each user's latest record, the state a resumed run starts from:
// a user whose latest event is [Done] is skipped, and one stopped after
// [Started] or [Enrolled] was interrupted mid-way.
func Last(records []Record) map[string]Record {
	last := make(map[string]Record)
	for _, r := range records {
		last[r.User] = r
	}
	return last
}
