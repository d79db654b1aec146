package profile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/keydesk/keydesk/platform"
)

// FileName is the name of the profiles file, which sits next to Keydesk's
// configuration file.
const FileName = "profiles.json"

// fileVersion is the format version Save writes and Load accepts.
const fileVersion = 1

// maxFileSize bounds what Load reads: thousands of profiles fit, and a
// file that is not a profiles file at all is refused rather than read.
const maxFileSize = 1 << 20

// DefaultPath returns where the profiles file lives: profiles.json in the
// directory of Keydesk's configuration file (platform.ConfigPath, so
// ~/.config/keydesk on Linux). Following $KEYDESK_CONFIG keeps a test or
// second configuration away from the user's own profiles.
func DefaultPath() (string, error) {
	cfg, err := platform.ConfigPath()
	if err != nil {
		return "", err
	}
	return filepath.Join(filepath.Dir(cfg), FileName), nil
}

// file is the JSON form of a Set. It has no place for a token: those live
// in a TokenStore.
type file struct {
	// Version is fileVersion; a file from a newer Keydesk is refused
	// rather than rewritten without what this version does not know.
	Version  int       `json:"version"`
	Current  string    `json:"current,omitempty"`
	Profiles []Profile `json:"profiles"`
}

// Set is the profiles of one profiles file and which of them is current.
// Changes stay in memory until Save. A Set is safe for use by several
// goroutines. The zero Set is empty and has no file to save to; use Load.
type Set struct {
	mu       sync.Mutex
	path     string
	current  string    // a name in profiles, as spelled there, or ""
	profiles []Profile // validated, in the order they were added
}

// Load reads the profiles file at path. A missing file is an empty Set that
// Save will create. A file that is not a valid profiles file is refused
// with an *Error of kind ErrCorruptFile that names the file and the
// problem (errors.Is also finds the kind of an invalid profile, such as
// ErrInvalidRPID); Load never changes the file.
func Load(path string) (*Set, error) {
	s := &Set{path: path}
	b, err := readFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the profiles file: %w", err)
	}
	corrupt := func(detail string, cause error) error {
		return &Error{Kind: ErrCorruptFile, Detail: fmt.Sprintf("the profiles file %s is damaged: %s", path, detail), Err: cause}
	}
	var f file
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, corrupt("it is not valid JSON ("+err.Error()+")", err)
	}
	switch {
	case f.Version > fileVersion:
		return nil, &Error{Kind: ErrCorruptFile, Detail: fmt.Sprintf("the profiles file %s was written by a newer version of Keydesk (format %d; this version reads format %d)", path, f.Version, fileVersion)}
	case f.Version != fileVersion:
		return nil, corrupt(fmt.Sprintf("it has no valid format version (found %d)", f.Version), nil)
	}
	for _, p := range f.Profiles {
		v, err := p.Validate()
		if err != nil {
			return nil, corrupt(err.Error(), err)
		}
		if i := s.index(v.Name); i >= 0 {
			return nil, corrupt(fmt.Sprintf("profiles %q and %q have the same name", s.profiles[i].Name, v.Name), duplicate(v.Name, s.profiles[i].Name))
		}
		s.profiles = append(s.profiles, v)
	}
	if f.Current != "" {
		i := s.index(f.Current)
		if i < 0 {
			return nil, corrupt(fmt.Sprintf("the current profile %q is not in the file", printable(f.Current)), nil)
		}
		s.current = s.profiles[i].Name
	}
	return s, nil
}

// readFile reads path, refusing a file larger than maxFileSize.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxFileSize {
		return nil, &Error{Kind: ErrCorruptFile, Detail: fmt.Sprintf("the profiles file %s is damaged: it is larger than %d bytes", path, maxFileSize)}
	}
	return b, nil
}

// Path returns the file the Set was loaded from and saves to.
func (s *Set) Path() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.path
}

// List returns the profiles in the order they were added.
func (s *Set) List() []Profile {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.profiles)
}

// Get returns the profile called name (ignoring case), or an *Error of
// kind ErrNoProfile.
func (s *Set) Get(name string) (Profile, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.index(name)
	if i < 0 {
		return Profile{}, noProfile(name)
	}
	return s.profiles[i], nil
}

// Add validates p (see Profile.Validate) and adds it as validated. Its name
// must not be taken, ignoring case (ErrDuplicateName). The first profile
// added to a Set without a current profile becomes current.
func (s *Set) Add(p Profile) error {
	v, err := p.Validate()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := s.index(v.Name); i >= 0 {
		return duplicate(v.Name, s.profiles[i].Name)
	}
	s.profiles = append(s.profiles, v)
	if s.current == "" {
		s.current = v.Name
	}
	return nil
}

// Update validates p and replaces the profile of the same name (ignoring
// case, and taking p's spelling of it); ErrNoProfile if there is none. To
// rename a profile, Remove it and Add it under the new name. When the
// update changes where the profile's RP is (see Profile.SameRP), the
// caller deletes the profile's session token.
func (s *Set) Update(p Profile) error {
	v, err := p.Validate()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.index(v.Name)
	if i < 0 {
		return noProfile(v.Name)
	}
	if strings.EqualFold(s.current, v.Name) {
		s.current = v.Name
	}
	s.profiles[i] = v
	return nil
}

// Remove removes the profile called name (ignoring case); ErrNoProfile if
// there is none. If it was current, no profile is current afterwards. The
// caller deletes the profile's session token too, so that a later profile
// of the same name never inherits it.
func (s *Set) Remove(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.index(name)
	if i < 0 {
		return noProfile(name)
	}
	if strings.EqualFold(s.current, name) {
		s.current = ""
	}
	s.profiles = slices.Delete(s.profiles, i, i+1)
	return nil
}

// Current returns the current profile, the one Keydesk opens with; false
// when there is none.
func (s *Set) Current() (Profile, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.current == "" {
		return Profile{}, false
	}
	return s.profiles[s.index(s.current)], true
}

// SetCurrent makes the profile called name (ignoring case) current;
// ErrNoProfile if there is none. An empty name leaves no profile current.
func (s *Set) SetCurrent(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if name == "" {
		s.current = ""
		return nil
	}
	i := s.index(name)
	if i < 0 {
		return noProfile(name)
	}
	s.current = s.profiles[i].Name
	return nil
}

// Save writes the Set to its file atomically: to a temporary file in the
// same directory (created 0700 if missing), synced, then renamed over the
// old one, so that a crash or a failed write leaves the previous file
// whole. The file is readable by its owner only (0600): it says which
// services the user has accounts with and under which names.
func (s *Set) Save() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.path == "" {
		return errors.New("save profiles: the set has no file (use Load)")
	}
	profiles := s.profiles
	if profiles == nil {
		profiles = []Profile{}
	}
	b, err := json.MarshalIndent(file{Version: fileVersion, Current: s.current, Profiles: profiles}, "", "  ")
	if err != nil {
		return fmt.Errorf("save profiles: %w", err)
	}
	if err := writeFileAtomic(s.path, append(b, '\n')); err != nil {
		return fmt.Errorf("save profiles to %s: %w", s.path, err)
	}
	return nil
}

// index returns the position of the profile called name, ignoring case,
// or -1. The caller holds s.mu (or owns s).
func (s *Set) index(name string) int {
	return slices.IndexFunc(s.profiles, func(p Profile) bool { return strings.EqualFold(p.Name, name) })
}

// noProfile is the error for a name no profile has.
func noProfile(name string) error {
	return &Error{Profile: name, Kind: ErrNoProfile, Detail: "there is no profile with this name"}
}

// duplicate is the error for a name that another profile already has.
func duplicate(name, existing string) error {
	detail := "a profile with this name already exists"
	if existing != name {
		detail = fmt.Sprintf("the name is already taken by profile %q (names are compared ignoring case)", existing)
	}
	return &Error{Profile: name, Kind: ErrDuplicateName, Detail: detail}
}
