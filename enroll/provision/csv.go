package provision

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// maxUsers bounds a batch: a file with more lines is not a list of
// people to hand keys to.
const maxUsers = 100000

// ReadUsers reads the batch's users from CSV: one user per line, the
// account name and optionally the key's nickname. A first line naming
// the columns ("user", "username" or "name") is skipped, as are empty
// lines and lines starting with '#'. A name given twice is an error: the
// run enrolls each user once.
func ReadUsers(r io.Reader) ([]User, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.Comment = '#'
	cr.TrimLeadingSpace = true
	var users []User
	seen := map[string]int{}
	for first := true; ; first = false {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("users CSV: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) == 0 || (len(rec) == 1 && strings.TrimSpace(rec[0]) == "") {
			continue
		}
		name := strings.TrimSpace(rec[0])
		if first {
			switch strings.ToLower(name) {
			case "user", "username", "name", "user name":
				continue
			}
		}
		if len(rec) > 2 {
			return nil, fmt.Errorf("users CSV line %d: %d columns; a line is a user name and, optionally, a nickname", line, len(rec))
		}
		if name == "" || len(name) > 256 || !utf8.ValidString(name) {
			return nil, fmt.Errorf("users CSV line %d: a user name is 1 to 256 bytes of UTF-8", line)
		}
		u := User{Name: name}
		if len(rec) == 2 {
			u.Nickname = strings.TrimSpace(rec[1])
			if len(u.Nickname) > 64 || !utf8.ValidString(u.Nickname) {
				return nil, fmt.Errorf("users CSV line %d: a nickname is at most 64 bytes of UTF-8", line)
			}
		}
		if prev, dup := seen[strings.ToLower(name)]; dup {
			return nil, fmt.Errorf("users CSV line %d: %q is already on line %d", line, name, prev)
		}
		seen[strings.ToLower(name)] = line
		users = append(users, u)
		if len(users) > maxUsers {
			return nil, fmt.Errorf("users CSV: more than %d users", maxUsers)
		}
	}
	if len(users) == 0 {
		return nil, errors.New("users CSV: no users")
	}
	return users, nil
}

// Status is a user's outcome in the results.
type Status string

// The outcomes.
const (
	StatusEnrolled Status = "enrolled" // done: verified, PIN handover written
	StatusFailed   Status = "failed"   // see Error; a resumed run tries again
	StatusPending  Status = "pending"  // not reached (the run was stopped)
)

// Result is one user's line in the results.
type Result struct {
	User         string
	Nickname     string
	Model        string
	AAGUID       string
	CredentialID string
	Status       Status
	// Error says what went wrong, or for an enrolled user what happened
	// on the way (an interrupted attempt's key revoked).
	Error string
	// Handover is the PIN page's file, relative to the results
	// directory.
	Handover string
}

// resultsHeader names the results' columns.
var resultsHeader = []string{"user", "nickname", "key model", "aaguid", "credential id", "status", "error", "pin handover"}

// WriteResults writes results as CSV, a header line first. No PIN is in a
// Result, so none can reach the file. A cell that a spreadsheet would run
// as a formula (starting with = + - @, tab or CR) is prefixed with a
// quote, as OWASP advises for CSV exports.
func WriteResults(w io.Writer, results []Result) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(resultsHeader); err != nil {
		return err
	}
	for _, r := range results {
		rec := []string{r.User, r.Nickname, r.Model, r.AAGUID, r.CredentialID, string(r.Status), r.Error, r.Handover}
		for i, c := range rec {
			rec[i] = defuse(c)
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// defuse keeps a spreadsheet from reading cell c as a formula.
func defuse(c string) string {
	if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
		return "'" + c
	}
	return c
}

// ReadResults reads results WriteResults wrote, by their header's column
// names (so that a column added later does not shift the others), undoing
// the quote that keeps a spreadsheet from running a cell. A GUI shows from
// them who an earlier run of the batch enrolled; the journal, not this
// file, is what a resumed run goes by.
func ReadResults(r io.Reader) ([]Result, error) {
	recs, err := csv.NewReader(r).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("results CSV: %w", err)
	}
	if len(recs) == 0 {
		return nil, errors.New("results CSV: no header")
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	if _, ok := col["user"]; !ok {
		return nil, errors.New("results CSV: no user column")
	}
	cell := func(rec []string, name string) string {
		i, ok := col[name]
		if !ok || i >= len(rec) {
			return ""
		}
		c := rec[i]
		if len(c) > 1 && c[0] == '\'' && strings.ContainsRune("=+-@\t\r", rune(c[1])) {
			c = c[1:]
		}
		return c
	}
	var out []Result
	for _, rec := range recs[1:] {
		out = append(out, Result{User: cell(rec, "user"), Nickname: cell(rec, "nickname"), Model: cell(rec, "key model"),
			AAGUID: cell(rec, "aaguid"), CredentialID: cell(rec, "credential id"), Status: Status(cell(rec, "status")),
			Error: cell(rec, "error"), Handover: cell(rec, "pin handover")})
	}
	return out, nil
}
