package profile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/keydesk/keydesk/platform"
)

// mustAdd adds profiles to s or fails the test.
func mustAdd(t *testing.T, s *Set, ps ...Profile) {
	t.Helper()
	for _, p := range ps {
		if err := s.Add(p); err != nil {
			t.Fatalf("Add(%s): %v", p.Name, err)
		}
	}
}

// readBytes returns the file's content or fails the test.
func readBytes(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// leftovers lists the files in dir other than keep: temporary files a
// failed save left behind.
func leftovers(t *testing.T, dir string, keep ...string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if !strings.Contains(strings.Join(keep, "/"), e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out
}

var (
	work = Profile{Name: "work", Origin: "https://login.example.com", RPID: "example.com", APIURL: "https://api.example.com/v1", Username: "alice"}
	home = Profile{Name: "Home", Origin: "https://id.example.org"}
	dev  = Profile{Name: "dev.local", Origin: "http://localhost:8787"}
)

func TestLoadShouldGiveAnEmptySetForAMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "such", FileName)
	s, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got := s.List(); len(got) != 0 {
		t.Errorf("List = %v, want empty", got)
	}
	if _, ok := s.Current(); ok {
		t.Error("an empty set has a current profile")
	}
	if s.Path() != path {
		t.Errorf("Path = %q, want %q", s.Path(), path)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load created the file: %v", err)
	}
	// Save creates it, and the missing directories (owner only).
	if err := s.Save(); err != nil {
		t.Fatalf("Save: %v", err)
	}
	if runtime.GOOS != "windows" {
		st, err := os.Stat(filepath.Dir(path))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o700 {
			t.Errorf("directory mode %v, want 0700", st.Mode().Perm())
		}
	}
	s2, err := Load(path)
	if err != nil || len(s2.List()) != 0 {
		t.Errorf("Load of the saved empty set: %v, %v", s2.List(), err)
	}
}

func TestSaveAndLoadShouldRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	s, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	mustAdd(t, s, work, home, dev)
	if err := s.SetCurrent("HOME"); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(); err != nil {
		t.Fatalf("Save: %v", err)
	}
	if runtime.GOOS != "windows" {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("file mode %v, want 0600", st.Mode().Perm())
		}
	}

	got, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := s.List()
	if fmt.Sprint(got.List()) != fmt.Sprint(want) || len(want) != 3 {
		t.Errorf("List after Load:\n got  %+v\n want %+v", got.List(), want)
	}
	if c, ok := got.Current(); !ok || c.Name != "Home" {
		t.Errorf("Current after Load = %+v, %v; want Home", c, ok)
	}
	// The file holds the validated form and the format version.
	b := string(readBytes(t, path))
	for _, want := range []string{`"version": 1`, `"current": "Home"`, `"rpId": "id.example.org"`, `"apiUrl": "http://localhost:8787"`} {
		if !strings.Contains(b, want) {
			t.Errorf("the file does not contain %s:\n%s", want, b)
		}
	}
	// Saving what was loaded changes nothing.
	if err := got.Save(); err != nil {
		t.Fatal(err)
	}
	if again := string(readBytes(t, path)); again != b {
		t.Errorf("Save of the loaded set changed the file:\n%s\nwas\n%s", again, b)
	}
}

func TestSaveShouldMakeAnExistingFileOwnerOnly(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows has no Unix permission bits")
	}
	path := filepath.Join(t.TempDir(), FileName)
	if err := os.WriteFile(path, []byte(`{"version":1,"profiles":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	mustAdd(t, s, work)
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v after Save, want 0600", st.Mode().Perm())
	}
}

func TestSaveShouldLeaveTheOldFileWhenWritingFails(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	s, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	mustAdd(t, s, work)
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	old := readBytes(t, path)

	// The disk fills up halfway through the next save.
	orig := writeData
	t.Cleanup(func() { writeData = orig })
	writeData = func(w io.Writer, data []byte) error {
		if _, err := w.Write(data[:len(data)/2]); err != nil {
			return err
		}
		return errors.New("no space left on device")
	}
	mustAdd(t, s, home, dev)
	err = s.Save()
	if err == nil || !strings.Contains(err.Error(), "no space left on device") || !strings.Contains(err.Error(), path) {
		t.Fatalf("Save: got %v, want the write error naming the file", err)
	}
	if now := readBytes(t, path); !bytes.Equal(now, old) {
		t.Errorf("a failed save changed the file:\n%s\nwas\n%s", now, old)
	}
	if l := leftovers(t, dir, FileName); len(l) != 0 {
		t.Errorf("a failed save left files behind: %v", l)
	}
	// The next save that works writes everything.
	writeData = orig
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	if got, err := Load(path); err != nil || len(got.List()) != 3 {
		t.Errorf("Load after a good save: %v, %v", got, err)
	}
}

func TestSaveShouldCleanUpWhenTheRenameFails(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	s, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	mustAdd(t, s, work)
	// Something else took the name meanwhile: a directory that is not
	// empty, which no rename replaces.
	if err := os.MkdirAll(filepath.Join(path, "keep"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(); err == nil {
		t.Fatal("Save over a directory succeeded")
	}
	if _, err := os.Stat(filepath.Join(path, "keep")); err != nil {
		t.Errorf("the directory is damaged: %v", err)
	}
	if l := leftovers(t, dir, FileName); len(l) != 0 {
		t.Errorf("a failed save left files behind: %v", l)
	}
}

func TestLoadShouldRefuseADamagedFileAndLeaveIt(t *testing.T) {
	valid := func(p Profile) string {
		return fmt.Sprintf(`{"name":%q,"origin":%q,"rpId":%q}`, p.Name, p.Origin, p.RPID)
	}
	tests := []struct {
		name     string
		content  string
		kind     error // besides ErrCorruptFile, if any
		contains string
	}{
		{name: "ShouldRefuseAnEmptyFile", content: "", contains: "not valid JSON"},
		{name: "ShouldRefuseText", content: "work = https://example.com\n", contains: "not valid JSON"},
		{name: "ShouldRefuseTruncatedJSON", content: `{"version":1,"profiles":[` + valid(work), contains: "not valid JSON"},
		{name: "ShouldRefuseTrailingGarbage", content: `{"version":1,"profiles":[]}x`, contains: "not valid JSON"},
		{name: "ShouldRefuseTheWrongShape", content: `{"version":1,"profiles":{"work":{}}}`, contains: "not valid JSON"},
		{name: "ShouldRefuseAFileWithoutVersion", content: `{"profiles":[]}`, contains: "no valid format version"},
		{name: "ShouldRefuseAFileFromANewerKeydesk", content: `{"version":2,"profiles":[]}`, contains: "written by a newer version of Keydesk"},
		{name: "ShouldRefuseAProfileThatDoesNotCheckOut", content: `{"version":1,"profiles":[{"name":"work","origin":"https://example.com","rpId":"login.example.org"}]}`,
			kind: ErrInvalidRPID, contains: `profile "work": the RP ID login.example.org does not belong to https://example.com`},
		{name: "ShouldRefuseAnInvalidName", content: `{"version":1,"profiles":[{"name":"my work","origin":"https://example.com"}]}`, kind: ErrInvalidName},
		{name: "ShouldRefuseNamesThatDifferOnlyInCase", content: `{"version":1,"profiles":[` + valid(work) + `,{"name":"WORK","origin":"https://example.org"}]}`,
			kind: ErrDuplicateName, contains: `profiles "work" and "WORK" have the same name`},
		{name: "ShouldRefuseACurrentProfileThatIsNotThere", content: `{"version":1,"current":"gone","profiles":[` + valid(work) + `]}`, contains: `the current profile "gone" is not in the file`},
		{name: "ShouldRefuseAHugeFile", content: `{"version":1,"profiles":[]}` + strings.Repeat(" ", maxFileSize), contains: "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), FileName)
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := Load(path)
			if err == nil {
				t.Fatalf("Load accepted it: %+v", s.List())
			}
			if s != nil {
				t.Error("Load returned a Set with its error, which a caller could save over the file")
			}
			if !errors.Is(err, ErrCorruptFile) {
				t.Errorf("errors.Is(%v, ErrCorruptFile) = false", err)
			}
			if tt.kind != nil && !errors.Is(err, tt.kind) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.kind)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("the error %q does not name the file", err)
			}
			if !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("the error %q does not say %q", err, tt.contains)
			}
			if got := readBytes(t, path); string(got) != tt.content {
				t.Error("Load changed the damaged file")
			}
		})
	}
}

func TestLoadShouldReportAnUnreadableFile(t *testing.T) {
	path := t.TempDir() // a directory where the file should be
	if _, err := Load(path); err == nil || errors.Is(err, ErrCorruptFile) {
		t.Errorf("Load of a directory: got %v, want a read error", err)
	}
}

func TestSaveShouldDropFieldsItDoesNotKnowSuchAsAToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	const secret = "session-token-someone-put-here"
	content := `{"version":1,"current":"work","profiles":[{"name":"work","origin":"https://example.com","token":"` + secret + `"}]}`
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	if b := readBytes(t, path); bytes.Contains(b, []byte(secret)) {
		t.Errorf("Save kept the token in the file:\n%s", b)
	}
}

func TestSetShouldAddUpdateRemoveAndTrackTheCurrentProfile(t *testing.T) {
	s, err := Load(filepath.Join(t.TempDir(), FileName))
	if err != nil {
		t.Fatal(err)
	}
	current := func() string {
		p, ok := s.Current()
		if !ok {
			return ""
		}
		return p.Name
	}

	mustAdd(t, s, work)
	if current() != "work" {
		t.Errorf("the first profile added is not current: %q", current())
	}
	mustAdd(t, s, home)
	if current() != "work" {
		t.Errorf("adding a second profile changed the current one to %q", current())
	}

	t.Run("ShouldRefuseADuplicateIgnoringCase", func(t *testing.T) {
		dup := home
		dup.Name = "HOME"
		err := s.Add(dup)
		if !errors.Is(err, ErrDuplicateName) {
			t.Fatalf("Add: got %v, want ErrDuplicateName", err)
		}
		if want := `profile "HOME": the name is already taken by profile "Home" (names are compared ignoring case)`; err.Error() != want {
			t.Errorf("message:\n got  %s\n want %s", err, want)
		}
		if len(s.List()) != 2 {
			t.Errorf("a refused Add changed the set: %v", s.List())
		}
	})

	t.Run("ShouldRefuseAnInvalidProfileAndKeepTheSet", func(t *testing.T) {
		bad := Profile{Name: "bad", Origin: "https://example.com", RPID: "login.example.org"}
		if err := s.Add(bad); !errors.Is(err, ErrInvalidRPID) {
			t.Errorf("Add: got %v, want ErrInvalidRPID", err)
		}
		bad.Name = "work"
		if err := s.Update(bad); !errors.Is(err, ErrInvalidRPID) {
			t.Errorf("Update: got %v, want ErrInvalidRPID", err)
		}
		if got, _ := s.Get("work"); got.RPID != "example.com" {
			t.Errorf("a refused Update changed the profile: %+v", got)
		}
	})

	t.Run("ShouldGetIgnoringCase", func(t *testing.T) {
		got, err := s.Get("WORK")
		if err != nil || got.Name != "work" || got.Username != "alice" {
			t.Errorf("Get(WORK) = %+v, %v", got, err)
		}
		if _, err := s.Get("nope"); !errors.Is(err, ErrNoProfile) || err.Error() != `profile "nope": there is no profile with this name` {
			t.Errorf("Get(nope): got %v", err)
		}
	})

	t.Run("ShouldUpdateInPlace", func(t *testing.T) {
		u := work
		u.Name, u.Username = "Work", "bob"
		if err := s.Update(u); err != nil {
			t.Fatal(err)
		}
		got, _ := s.Get("work")
		if got.Username != "bob" || got.Name != "Work" {
			t.Errorf("after Update: %+v", got)
		}
		if current() != "Work" {
			t.Errorf("the current profile did not follow the new spelling: %q", current())
		}
		if names := s.List()[0].Name + " " + s.List()[1].Name; names != "Work Home" {
			t.Errorf("Update moved the profile: %s", names)
		}
		if err := s.Update(Profile{Name: "nope", Origin: "https://example.com"}); !errors.Is(err, ErrNoProfile) {
			t.Errorf("Update of a missing profile: got %v, want ErrNoProfile", err)
		}
	})

	t.Run("ShouldSetTheCurrentProfile", func(t *testing.T) {
		if err := s.SetCurrent("home"); err != nil || current() != "Home" {
			t.Errorf("SetCurrent(home): %v, current %q", err, current())
		}
		if err := s.SetCurrent("nope"); !errors.Is(err, ErrNoProfile) || current() != "Home" {
			t.Errorf("SetCurrent(nope): %v, current %q", err, current())
		}
		if err := s.SetCurrent(""); err != nil || current() != "" {
			t.Errorf("SetCurrent(\"\"): %v, current %q", err, current())
		}
		if err := s.SetCurrent("Home"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("ShouldRemoveAndForgetTheCurrentProfile", func(t *testing.T) {
		if err := s.Remove("nope"); !errors.Is(err, ErrNoProfile) {
			t.Errorf("Remove(nope): got %v, want ErrNoProfile", err)
		}
		if err := s.Remove("HOME"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get("Home"); !errors.Is(err, ErrNoProfile) {
			t.Errorf("Get after Remove: %v", err)
		}
		if current() != "" {
			t.Errorf("the removed profile is still current")
		}
		if len(s.List()) != 1 {
			t.Errorf("List after Remove: %v", s.List())
		}
		// The name is free again.
		mustAdd(t, s, home)
	})

	t.Run("ShouldNotShareItsSlice", func(t *testing.T) {
		l := s.List()
		l[0].Name = "changed"
		if s.List()[0].Name == "changed" {
			t.Error("List returned the set's own slice")
		}
	})
}

func TestSaveShouldNeedAPath(t *testing.T) {
	var s Set
	mustAdd(t, &s, work)
	if err := s.Save(); err == nil {
		t.Error("Save of a Set without a file succeeded")
	}
}

func TestSetShouldBeSafeForConcurrentUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	s, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("p%d", i)
			for j := range 20 {
				_ = s.Add(Profile{Name: name, Origin: "https://example.com"})
				_ = s.SetCurrent(name)
				_, _ = s.Current()
				_ = s.List()
				if j%5 == 0 {
					if err := s.Save(); err != nil {
						t.Error(err)
					}
				}
				_ = s.Remove(name)
			}
			_ = s.Add(Profile{Name: name, Origin: "https://example.com"})
		}()
	}
	wg.Wait()
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil || len(got.List()) != 8 {
		t.Errorf("Load after concurrent use: %d profiles, %v", len(got.List()), err)
	}
}

func TestDefaultPathShouldSitNextToTheConfigurationFile(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(platform.ConfigEnv, filepath.Join(dir, "config.json"))
	got, err := DefaultPath()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, FileName); got != want {
		t.Errorf("DefaultPath = %q, want %q", got, want)
	}

	// Without $KEYDESK_CONFIG: the user's configuration directory, which
	// on Linux and the BSDs is $XDG_CONFIG_HOME.
	t.Setenv(platform.ConfigEnv, "")
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "xdg"))
	cfg, err := os.UserConfigDir()
	if err != nil {
		t.Fatal(err)
	}
	got, err = DefaultPath()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(cfg, "keydesk", FileName); got != want {
		t.Errorf("DefaultPath = %q, want %q", got, want)
	}
}
