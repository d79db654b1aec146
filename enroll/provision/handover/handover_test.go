package handover_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/keydesk/keydesk/enroll/provision/handover"
)

// pinLine is how the provisioning tests find the PIN in pdftotext's output;
// the page must keep matching it.
var pinLine = regexp.MustCompile(`PIN: (\S+)`)

// alice is a complete sheet; cases change what they are about.
func alice(pin string) handover.Sheet {
	return handover.Sheet{
		User:         "alice",
		DisplayName:  "Alice Liddell",
		Service:      "https://login.example.com",
		KeyModel:     "YubiKey 5 NFC",
		Nickname:     "Work key",
		AAGUID:       "cb69481e-8ff7-4039-93ec-0a2729a154a8",
		Batch:        "2026-03 finance",
		Issued:       time.Date(2026, 3, 5, 9, 30, 0, 0, time.UTC),
		MinPINLength: 8,
		PIN:          []byte(pin),
	}
}

// poppler runs one of poppler-utils' tools, which the tests need: what
// counts is what a real PDF reader makes of the page, not what fpdf was
// asked to draw.
func poppler(t *testing.T, tool string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err != nil {
		t.Fatalf("%s (Debian package poppler-utils) is not installed: run `make deps`: %v", tool, err)
	}
	out, err := exec.Command(path, args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("%s %s: %v: %s", tool, strings.Join(args, " "), err, ee.Stderr)
		}
		t.Fatalf("%s %s: %v", tool, strings.Join(args, " "), err)
	}
	return string(out)
}

// render renders s to a file and returns the file's path.
func render(t *testing.T, s handover.Sheet) string {
	t.Helper()
	var buf bytes.Buffer
	if err := handover.Render(&buf, s); err != nil {
		t.Fatalf("Render: %v", err)
	}
	path := filepath.Join(t.TempDir(), "page.pdf")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkOnePage fails t unless the PDF at path has exactly one page.
func checkOnePage(t *testing.T, path string) {
	t.Helper()
	info := poppler(t, "pdfinfo", path)
	if !regexp.MustCompile(`(?m)^Pages:\s+1$`).MatchString(info) {
		t.Errorf("pdfinfo: want Pages: 1, got:\n%s", info)
	}
	if !regexp.MustCompile(`(?m)^Page size:.*\(A4\)$`).MatchString(info) {
		t.Errorf("pdfinfo: want an A4 page, got:\n%s", info)
	}
}

func TestRender(t *testing.T) {
	tests := []struct {
		name  string
		sheet handover.Sheet
		want  []string // besides the PIN; whitespace runs as one space
		not   []string
	}{
		{
			name:  "ShouldPrintADigitsPIN",
			sheet: alice("482913"),
			want: []string{
				"Your security key",
				"For Alice Liddell (alice)",
				"Service: https://login.example.com",
				"Key: YubiKey 5 NFC — Work key",
				"Batch: 2026-03 finance",
				"Issued: 5 Mar 2026",
				"at least 8 characters",
				"cb69481e-8ff7-4039-93ec-0a2729a154a8",
				"helpdesk",
			},
		},
		{
			name:  "ShouldPrintAnAlphanumericPIN",
			sheet: alice("Xk7pQ2mZ0OlI1"),
			want:  []string{"alice", "https://login.example.com", "YubiKey 5 NFC", "2026-03 finance"},
		},
		{
			name:  "ShouldPrintAPINWithWindows1252Characters",
			sheet: alice("Grüße€42"),
			want:  []string{"alice", "https://login.example.com", "YubiKey 5 NFC", "2026-03 finance"},
		},
		{
			name:  "ShouldPrintTheLongestPINOnOneLine",
			sheet: alice(strings.Repeat("W", 63)),
			want:  []string{"alice", "https://login.example.com"},
		},
		{
			name: "ShouldShowJustTheUserWithoutADisplayName",
			sheet: func() handover.Sheet {
				s := alice("482913")
				s.DisplayName = ""
				return s
			}(),
			want: []string{"For alice"},
			not:  []string{"(alice)"},
		},
		{
			name: "ShouldLeaveOutWhatIsEmpty",
			sheet: handover.Sheet{
				User:    "bob",
				Service: "https://login.example.com",
				PIN:     []byte("739104"),
			},
			want: []string{"For bob", "Service: https://login.example.com", "choose a new PIN"},
			not:  []string{"Key:", "Batch:", "Issued:", "at least", "AAGUID"},
		},
		{
			name: "ShouldShowTheModelWithoutANickname",
			sheet: func() handover.Sheet {
				s := alice("482913")
				s.Nickname = ""
				return s
			}(),
			want: []string{"Key: YubiKey 5 NFC Batch:"},
			not:  []string{"—"},
		},
		{
			name: "ShouldReplaceWhatTheFontCannotShowInAName",
			sheet: func() handover.Sheet {
				s := alice("482913")
				s.User = "ivan"
				s.DisplayName = "Иван Петров"
				return s
			}(),
			want: []string{"For ???? ?????? (ivan)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := render(t, tt.sheet)
			text := poppler(t, "pdftotext", path, "-")
			m := pinLine.FindAllStringSubmatch(text, -1)
			if len(m) != 1 || m[0][1] != string(tt.sheet.PIN) {
				t.Errorf("PIN regexp: want exactly one match %q, got %q in:\n%s", tt.sheet.PIN, m, text)
			}
			// pdftotext breaks lines where the page does.
			flat := strings.Join(strings.Fields(text), " ")
			for _, w := range tt.want {
				if !strings.Contains(flat, w) {
					t.Errorf("page lacks %q:\n%s", w, text)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(flat, n) {
					t.Errorf("page has %q:\n%s", n, text)
				}
			}
			checkOnePage(t, path)
		})
	}
}

func TestRenderFitsLongDetailsOnOnePage(t *testing.T) {
	s := alice("482913")
	s.DisplayName = strings.Repeat("Alice Pleasance Liddell Hargreaves ", 6)
	s.Service = "https://login." + strings.Repeat("subdomain.", 20) + "example.com"
	s.Batch = strings.Repeat("batch ", 30)
	path := render(t, s)
	checkOnePage(t, path)
	if m := pinLine.FindAllStringSubmatch(poppler(t, "pdftotext", path, "-"), -1); len(m) != 1 || m[0][1] != "482913" {
		t.Errorf("PIN regexp: got %q", m)
	}
}

func TestRenderRefuses(t *testing.T) {
	tests := []struct {
		name  string
		sheet handover.Sheet
		want  error
	}{
		{name: "ShouldRefuseFullWidthDigits", sheet: alice("１２３４５６"), want: handover.ErrInvalidPIN},
		{name: "ShouldRefuseCyrillic", sheet: alice("ПИН1"), want: handover.ErrInvalidPIN},
		{name: "ShouldRefuseAnEmoji", sheet: alice("1234🔑"), want: handover.ErrInvalidPIN},
		{name: "ShouldRefuseASpace", sheet: alice("1234 5678"), want: handover.ErrInvalidPIN},
		{name: "ShouldRefuseANoBreakSpace", sheet: alice("1234\u00a05678"), want: handover.ErrInvalidPIN},
		{name: "ShouldRefuseASoftHyphen", sheet: alice("1234\u00ad5678"), want: handover.ErrInvalidPIN},
		{name: "ShouldRefuseAControlCharacter", sheet: alice("1234\x005678"), want: handover.ErrInvalidPIN},
		{name: "ShouldRefuseInvalidUTF8", sheet: alice("1234\xff5678"), want: handover.ErrInvalidPIN},
		{name: "ShouldRefuseAnEmptyPIN", sheet: alice(""), want: handover.ErrInvalidPIN},
		{name: "ShouldRefuseAPINShorterThanCTAPAllows", sheet: alice("987"), want: handover.ErrInvalidPIN},
		{name: "ShouldRefuseAPINLongerThanCTAPAllows", sheet: alice(strings.Repeat("7", 64)), want: handover.ErrInvalidPIN},
		{
			name: "ShouldRefuseASheetWithoutUser",
			sheet: func() handover.Sheet {
				s := alice("482913")
				s.User = " "
				return s
			}(),
			want: handover.ErrIncompleteSheet,
		},
		{
			name: "ShouldRefuseASheetWithoutService",
			sheet: func() handover.Sheet {
				s := alice("482913")
				s.Service = ""
				return s
			}(),
			want: handover.ErrIncompleteSheet,
		},
		{
			name: "ShouldRefuseASheetLongerThanAPage",
			sheet: func() handover.Sheet {
				s := alice("482913")
				s.Batch = strings.Repeat("a very long batch name ", 400)
				return s
			}(),
			want: handover.ErrDoesNotFit,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			err := handover.Render(&buf, tt.sheet)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Render: want %v, got %v", tt.want, err)
			}
			checkNoPIN(t, err, tt.sheet.PIN)
			if buf.Len() != 0 {
				t.Errorf("Render wrote %d bytes despite the error", buf.Len())
			}
		})
	}
}

// checkNoPIN fails t if err's message has pin in it, or any run of four of
// its bytes, which would give away most of a short PIN.
//
// File paths are taken out first: the temporary names the test and Write
// make hold random digits, which may happen to match.
func checkNoPIN(t *testing.T, err error, pin []byte) {
	t.Helper()
	msg := pathLike.ReplaceAllString(err.Error(), "")
	if len(pin) > 0 && strings.Contains(msg, string(pin)) {
		t.Errorf("error %q contains the PIN", msg)
	}
	for i := 0; i+4 <= len(pin); i++ {
		if strings.Contains(msg, string(pin[i:i+4])) {
			t.Errorf("error %q contains part of the PIN, %q", msg, pin[i:i+4])
		}
	}
}

// pathLike matches a file path in an error message.
var pathLike = regexp.MustCompile(`\S*/\S*`)

// failingWriter fails every write, like a full disk.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, io.ErrShortWrite }

func TestRenderReportsTheWritersError(t *testing.T) {
	s := alice("482913")
	err := handover.Render(failingWriter{}, s)
	if !errors.Is(err, io.ErrShortWrite) {
		t.Fatalf("Render: want %v, got %v", io.ErrShortWrite, err)
	}
	checkNoPIN(t, err, s.PIN)
}

func TestRenderLeavesThePINAsItWas(t *testing.T) {
	s := alice("482913")
	if err := handover.Render(io.Discard, s); err != nil {
		t.Fatal(err)
	}
	if string(s.PIN) != "482913" {
		t.Errorf("Sheet.PIN is now %q", s.PIN)
	}
}

func TestWrite(t *testing.T) {
	t.Run("ShouldCreateAPageOnlyTheOwnerCanRead", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "alice.pdf")
		if err := handover.Write(path, alice("482913")); err != nil {
			t.Fatalf("Write: %v", err)
		}
		checkMode(t, path)
		checkOnePage(t, path)
		if m := pinLine.FindAllStringSubmatch(poppler(t, "pdftotext", path, "-"), -1); len(m) != 1 || m[0][1] != "482913" {
			t.Errorf("PIN regexp: got %q", m)
		}
		checkOnlyFiles(t, filepath.Dir(path), "alice.pdf")
	})
	t.Run("ShouldReplaceAnExistingFile", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "alice.pdf")
		if err := os.WriteFile(path, []byte("an earlier, interrupted run"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := handover.Write(path, alice("Xk7pQ2mZ")); err != nil {
			t.Fatalf("Write: %v", err)
		}
		checkMode(t, path)
		if m := pinLine.FindAllStringSubmatch(poppler(t, "pdftotext", path, "-"), -1); len(m) != 1 || m[0][1] != "Xk7pQ2mZ" {
			t.Errorf("PIN regexp: got %q", m)
		}
		checkOnlyFiles(t, filepath.Dir(path), "alice.pdf")
	})
}

func TestWriteFails(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) string // returns the path to write
		sheet handover.Sheet
		want  error // if not nil, errors.Is must hold
		// left is what dir must hold afterwards.
		left []string
	}{
		{
			name: "ShouldFailInADirectoryThatDoesNotExist",
			setup: func(t *testing.T, dir string) string {
				return filepath.Join(dir, "missing", "alice.pdf")
			},
			sheet: alice("482913"),
			want:  os.ErrNotExist,
		},
		{
			name: "ShouldFailOnAPathThatIsADirectory",
			setup: func(t *testing.T, dir string) string {
				path := filepath.Join(dir, "alice.pdf")
				if err := os.Mkdir(path, 0o700); err != nil {
					t.Fatal(err)
				}
				return path
			},
			sheet: alice("482913"),
			left:  []string{"alice.pdf"},
		},
		{
			name: "ShouldKeepTheOldFileWhenThePINCannotBePrinted",
			setup: func(t *testing.T, dir string) string {
				path := filepath.Join(dir, "alice.pdf")
				if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
					t.Fatal(err)
				}
				return path
			},
			sheet: alice("ПИН1"),
			want:  handover.ErrInvalidPIN,
			left:  []string{"alice.pdf"},
		},
		{
			name: "ShouldLeaveNothingWhenThePINCannotBePrinted",
			setup: func(t *testing.T, dir string) string {
				return filepath.Join(dir, "alice.pdf")
			},
			sheet: alice("１２３４"),
			want:  handover.ErrInvalidPIN,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := tt.setup(t, dir)
			var before []byte
			if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
				before, _ = os.ReadFile(path)
			}
			err := handover.Write(path, tt.sheet)
			if err == nil {
				t.Fatal("Write: want an error, got none")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Write: want %v, got %v", tt.want, err)
			}
			checkNoPIN(t, err, tt.sheet.PIN)
			checkOnlyFiles(t, dir, tt.left...)
			if before != nil {
				if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
					t.Errorf("the file at path changed to %q", after)
				}
			}
		})
	}
}

// checkMode fails t unless path is readable by its owner alone. Windows
// has no such mode bits.
func checkMode(t *testing.T, path string) {
	t.Helper()
	if runtime.GOOS == "windows" {
		return
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("mode: want 0600, got %#o", got)
	}
}

// checkOnlyFiles fails t unless dir holds exactly names: no temporary file
// may be left behind.
func checkOnlyFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, "\n") != strings.Join(names, "\n") {
		t.Errorf("%s holds %q, want %q", dir, got, names)
	}
}
