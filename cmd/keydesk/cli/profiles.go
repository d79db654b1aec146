package cli

import (
	"errors"
	"fmt"

	"github.com/keydesk/keydesk/enroll/profile"
)

// profileJSON is one profile in the output of "keydesk profiles list
// --json".
type profileJSON struct {
	Name     string `json:"name"`
	Origin   string `json:"origin"`
	RPID     string `json:"rpId"`
	APIURL   string `json:"apiUrl"`
	Username string `json:"username"`
	Current  bool   `json:"current"`
}

// profilesJSON is the output of "keydesk profiles list --json".
type profilesJSON struct {
	// Current names the current profile, "" when none is.
	Current  string        `json:"current"`
	Profiles []profileJSON `json:"profiles"`
}

// profiles is "keydesk profiles list|add|remove|use": the relying parties
// the account commands talk to, kept in profiles.json next to the
// configuration file (profile.DefaultPath), shared with the GUI.
func (e *env) profiles(args []string) error {
	return e.sub("profiles", args, map[string]func([]string) error{
		"list":   func(a []string) error { return e.profilesList(a) },
		"add":    func(a []string) error { return e.profilesAdd(a) },
		"remove": func(a []string) error { return e.profilesRemove(a) },
		"use":    func(a []string) error { return e.profilesUse(a) },
	})
}

// loadProfiles reads the profiles file. A damaged one is exit 1: it is
// left as it is for the user to repair (profile.Load never rewrites it).
func loadProfiles() (*profile.Set, error) {
	path, err := profile.DefaultPath()
	if err != nil {
		return nil, err
	}
	set, err := profile.Load(path)
	if err != nil {
		return nil, &ExitError{Code: ExitOther, Err: err}
	}
	return set, nil
}

// profileError gives a refused profile or name its exit code: a bad name,
// origin, RP ID or API address, a name taken or unknown are the command
// line's mistakes (2); anything else, such as a file that cannot be
// saved, is 1. profile.Error's message names the profile and the problem.
func profileError(err error) error {
	var pe *profile.Error
	if errors.As(err, &pe) && !errors.Is(err, profile.ErrCorruptFile) {
		return &ExitError{Code: ExitUsage, Err: err}
	}
	return err
}

func (e *env) profilesList(args []string) error {
	f := e.newFlags("profiles list", true, false, false)
	if _, err := f.parse(args, 0); err != nil {
		return err
	}
	set, err := loadProfiles()
	if err != nil {
		return err
	}
	cur, _ := set.Current()
	out := profilesJSON{Current: cur.Name, Profiles: []profileJSON{}}
	for _, p := range set.List() {
		out.Profiles = append(out.Profiles, profileJSON{Name: p.Name, Origin: p.Origin, RPID: p.RPID,
			APIURL: p.APIURL, Username: p.Username, Current: p.Name == cur.Name})
	}
	if f.json {
		return writeJSON(e.stdout, out)
	}
	if len(out.Profiles) == 0 {
		fmt.Fprintln(e.stdout, "No profiles; add one with: keydesk profiles add NAME --origin https://login.example.com")
		return nil
	}
	for _, p := range out.Profiles {
		line := fmt.Sprintf("%s\t%s\trpId %s\tapi %s", p.Name, p.Origin, p.RPID, p.APIURL)
		if p.Current {
			line += "\tcurrent"
		}
		fmt.Fprintln(e.stdout, line)
	}
	return nil
}

func (e *env) profilesAdd(args []string) error {
	f := e.newFlags("profiles add", false, false, false)
	origin := f.String("origin", "", "the relying party's web origin, such as https://login.example.com")
	rpID := f.String("rp-id", "", "the RP ID (default: the origin's host)")
	apiURL := f.String("api-url", "", "the API's base address (default: the origin)")
	pos, err := f.parse(args, 1)
	if err != nil {
		return err
	}
	if *origin == "" {
		return usageError("profiles add: --origin is required (such as --origin https://login.example.com)")
	}
	set, err := loadProfiles()
	if err != nil {
		return err
	}
	_, hadCurrent := set.Current()
	if err := set.Add(profile.Profile{Name: pos[0], Origin: *origin, RPID: *rpID, APIURL: *apiURL}); err != nil {
		return profileError(err)
	}
	p, err := set.Get(pos[0])
	if err != nil {
		return err
	}
	// A new profile starts signed out: a token left under its name (by a
	// removed profile whose token could not be deleted) belongs to
	// whatever RP that profile named, and must never be sent to this one.
	if store, warning := profile.OpenTokenStore(); warning == "" {
		if err := store.Delete(p.Name); err != nil && !errors.Is(err, profile.ErrNotFound) {
			return fmt.Errorf("profiles add: forget an old session of %q: %w", p.Name, err)
		}
	}
	if err := set.Save(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Added profile %s: origin %s, RP ID %s, API %s.\n", p.Name, p.Origin, p.RPID, p.APIURL)
	if !hadCurrent {
		fmt.Fprintf(e.stdout, "%s is the current profile.\n", p.Name)
	}
	return nil
}

func (e *env) profilesRemove(args []string) error {
	f := e.newFlags("profiles remove", false, false, false)
	pos, err := f.parse(args, 1)
	if err != nil {
		return err
	}
	set, err := loadProfiles()
	if err != nil {
		return err
	}
	p, err := set.Get(pos[0])
	if err != nil {
		return profileError(err)
	}
	cur, _ := set.Current()
	if err := set.Remove(p.Name); err != nil {
		return profileError(err)
	}
	// The session token goes with the profile (before the file is saved,
	// so that a failure leaves both), so that a later profile of the same
	// name never inherits it. The session itself ends at the server when
	// it expires: removing a profile does not need the network.
	store, warning := profile.OpenTokenStore()
	if warning != "" {
		fmt.Fprintf(e.stderr, "The system keyring is not available: if a session of %s is kept there, it was not deleted.\n", p.Name)
	} else if err := store.Delete(p.Name); err != nil && !errors.Is(err, profile.ErrNotFound) {
		return fmt.Errorf("profiles remove: delete the session token of %q: %w", p.Name, err)
	}
	if err := set.Save(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Removed profile %s.\n", p.Name)
	if cur.Name == p.Name {
		fmt.Fprintln(e.stdout, "No profile is current now; choose one with: keydesk profiles use NAME")
	}
	return nil
}

func (e *env) profilesUse(args []string) error {
	f := e.newFlags("profiles use", false, false, false)
	pos, err := f.parse(args, 1)
	if err != nil {
		return err
	}
	set, err := loadProfiles()
	if err != nil {
		return err
	}
	if err := set.SetCurrent(pos[0]); err != nil {
		return profileError(err)
	}
	if err := set.Save(); err != nil {
		return err
	}
	cur, _ := set.Current()
	fmt.Fprintf(e.stdout, "Current profile: %s.\n", cur.Name)
	return nil
}

// pickProfile returns the profile --profile names, or the current one.
// No profile at all, none current, or an unknown name is a usage error
// that says what to run.
func pickProfile(set *profile.Set, name string) (profile.Profile, error) {
	if name != "" {
		p, err := set.Get(name)
		if err != nil {
			return profile.Profile{}, usageError("--profile: no profile %q (see keydesk profiles list)", name)
		}
		return p, nil
	}
	if p, ok := set.Current(); ok {
		return p, nil
	}
	if len(set.List()) == 0 {
		return profile.Profile{}, usageError("no profile is configured: add the service you sign in to with " +
			"keydesk profiles add NAME --origin https://login.example.com")
	}
	return profile.Profile{}, usageError("no profile is current: choose one with keydesk profiles use NAME, or give --profile NAME")
}
