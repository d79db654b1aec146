//go:build linux

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keydesk/keydesk/enroll/profile"
	"github.com/keydesk/keydesk/enroll/profile/secretservicetest"
	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/rp/rptest"
)

// The account commands run against the whole stack: software keys behind
// the real libfido2, keydesk's commands, the reference RP server (rp/server
// over SQLite, on loopback over HTTP) verifying with go-webauthn, and the
// session token in a real Secret Service between runs.

const (
	accountOrigin = "https://localhost"
	accountRPID   = "localhost"
)

// rpService is a reference RP with a bootstrapped user "root" whose
// one-use enrollment code is code, and the clock it reads, so that a test
// can age a session past the step-up window or its end.
type rpService struct {
	ts    *httptest.Server
	code  string
	clock *rptest.Clock
}

func startRP(t *testing.T) *rpService {
	t.Helper()
	s := rptest.StartServer(t, rptest.ServerOptions{RPID: accountRPID, Origin: accountOrigin})
	return &rpService{ts: s.HTTP, code: s.Code, clock: s.Clock}
}

// accountTest gives the test the shared Secret Service and a
// configuration directory of its own, and deletes the tokens of
// profiles at the end, since the keyring outlives the test.
func accountTest(t *testing.T, profiles ...string) {
	t.Helper()
	secretservicetest.Shared(t)
	t.Setenv(platform.ConfigEnv, filepath.Join(t.TempDir(), "config.json"))
	t.Cleanup(func() {
		for _, p := range profiles {
			profile.NewKeyring().Delete(p)
		}
	})
}

// storedToken is the profile's session token in the keyring, "" for none.
func storedToken(t *testing.T, name string) string {
	t.Helper()
	tok, err := profile.NewKeyring().Get(name)
	if errors.Is(err, profile.ErrNotFound) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// step is one keydesk run of a sequence, and what it must give.
type step struct {
	name   string
	before func(t *testing.T) // run first
	stdin  string
	args   []string
	// argsOf, when set, gives the args when the step runs, for IDs an
	// earlier step learnt.
	argsOf   func() []string
	wantCode int
	wantOut  []string // each in stdout
	wantErr  []string // each in the error message
	stderr   []string // each in stderr
	noStderr []string // none in stderr
	check    func(t *testing.T, r result)
}

// runSteps runs the steps in order; a step that fails ends the sequence,
// since the following ones build on it. secrets must appear in no output
// and no error.
func runSteps(t *testing.T, steps []step, secrets func() []string) {
	t.Helper()
	for _, s := range steps {
		ok := t.Run(s.name, func(t *testing.T) {
			if s.before != nil {
				s.before(t)
			}
			if s.argsOf != nil {
				s.args = s.argsOf()
			}
			r := run(t, s.stdin, s.args...)
			errMsg := ""
			if r.err != nil {
				errMsg = r.err.Error()
			}
			if r.code != s.wantCode {
				t.Fatalf("keydesk %q: exit %d, want %d: %s\nstdout: %s\nstderr: %s", s.args, r.code, s.wantCode, errMsg, r.stdout, r.stderr)
			}
			for _, w := range s.wantOut {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, r.stdout)
				}
			}
			for _, w := range s.wantErr {
				if !strings.Contains(errMsg, w) {
					t.Errorf("error %q lacks %q", errMsg, w)
				}
			}
			for _, w := range s.stderr {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			for _, w := range s.noStderr {
				if strings.Contains(r.stderr, w) {
					t.Errorf("stderr has %q:\n%s", w, r.stderr)
				}
			}
			if secrets != nil {
				for _, sec := range secrets() {
					if sec != "" && strings.Contains(r.stdout+r.stderr+errMsg, sec) {
						t.Errorf("a secret was printed:\nstdout: %s\nstderr: %s\nerror: %s", r.stdout, r.stderr, errMsg)
					}
				}
			}
			if s.check != nil {
				s.check(t, r)
			}
		})
		if !ok {
			t.FailNow()
		}
	}
}

// profilesOf runs profiles list --json.
func profilesOf(t *testing.T) profilesJSON {
	t.Helper()
	var got profilesJSON
	out := mustRun(t, "", "profiles", "list", "--json")
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return got
}

// TestProfiles: adding, listing, choosing and removing profiles; what
// the account commands say without one; refused profiles change nothing.
func TestProfiles(t *testing.T) {
	accountTest(t, "work", "home")
	const loginURL = "https://login.example.com"
	runSteps(t, []step{
		{name: "KeysListShouldAskForAProfileWhenNoneIsConfigured", args: []string{"keys", "list"},
			wantCode: ExitUsage, wantErr: []string{"no profile is configured", "keydesk profiles add NAME --origin"}},
		{name: "LoginShouldAskForAProfileWhenNoneIsConfigured", args: []string{"login", "--code-stdin", "--user", "root"},
			wantCode: ExitUsage, wantErr: []string{"no profile is configured"}},
		{name: "ListShouldSayThereAreNone", args: []string{"profiles", "list"}, wantOut: []string{"No profiles"}},
		{name: "AddShouldRefuseAnInsecureOrigin", args: []string{"profiles", "add", "work", "--origin", "http://example.com"},
			wantCode: ExitUsage, wantErr: []string{`profile "work"`, "not secure"}},
		{name: "AddShouldRefuseAnRPIDTheOriginMayNotUse", args: []string{"profiles", "add", "work", "--origin", loginURL, "--rp-id", "example.org"},
			wantCode: ExitUsage, wantErr: []string{"the RP ID example.org does not belong to " + loginURL}},
		{name: "AddShouldRefuseABadAPIAddress", args: []string{"profiles", "add", "work", "--origin", loginURL, "--api-url", "http://api.example.com"},
			wantCode: ExitUsage, wantErr: []string{"API address"}},
		{name: "AddShouldRefuseABadName", args: []string{"profiles", "add", "my work", "--origin", loginURL},
			wantCode: ExitUsage, wantErr: []string{"may contain only letters"}},
		{name: "AddShouldRequireAnOrigin", args: []string{"profiles", "add", "work"},
			wantCode: ExitUsage, wantErr: []string{"--origin is required"}},
		{name: "RefusedProfilesShouldNotBeSaved", args: []string{"profiles", "list", "--json"},
			check: func(t *testing.T, r result) {
				if got := profilesOf(t); got.Current != "" || len(got.Profiles) != 0 {
					t.Errorf("profiles: %+v", got)
				}
			}},
		{name: "AddShouldMakeTheFirstProfileCurrent", args: []string{"profiles", "add", "work", "--origin", loginURL, "--rp-id", "example.com"},
			wantOut: []string{"Added profile work: origin " + loginURL + ", RP ID example.com, API " + loginURL, "work is the current profile."}},
		{name: "AddShouldKeepTheCurrentProfile", args: []string{"profiles", "add", "home", "--origin", "https://LOCALHOST:443", "--api-url", "http://127.0.0.1:8787/"},
			check: func(t *testing.T, r result) {
				if strings.Contains(r.stdout, "current") {
					t.Errorf("stdout: %s", r.stdout)
				}
			}},
		{name: "AddShouldRefuseATakenNameIgnoringCase", args: []string{"profiles", "add", "WORK", "--origin", loginURL},
			wantCode: ExitUsage, wantErr: []string{"already"}},
		{name: "ListShouldGiveEveryFieldAsJSON", args: []string{"profiles", "list", "--json"},
			check: func(t *testing.T, r result) {
				want := profilesJSON{Current: "work", Profiles: []profileJSON{
					{Name: "work", Origin: loginURL, RPID: "example.com", APIURL: loginURL, Current: true},
					{Name: "home", Origin: "https://localhost", RPID: "localhost", APIURL: "http://127.0.0.1:8787/"},
				}}
				var got profilesJSON
				if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
					t.Fatal(err)
				}
				if len(got.Profiles) != 2 || got.Current != want.Current || got.Profiles[0] != want.Profiles[0] || got.Profiles[1] != want.Profiles[1] {
					t.Errorf("profiles:\n%s\nwant %+v", r.stdout, want)
				}
			}},
		{name: "ListShouldMarkTheCurrentProfileAsText", args: []string{"profiles", "list"},
			wantOut: []string{"work\t" + loginURL + "\trpId example.com\tapi " + loginURL + "\tcurrent\n",
				"home\thttps://localhost\trpId localhost\tapi http://127.0.0.1:8787/\n"}},
		{name: "UseShouldChangeTheCurrentProfile", args: []string{"profiles", "use", "HOME"}, wantOut: []string{"Current profile: home."},
			check: func(t *testing.T, r result) {
				if got := profilesOf(t); got.Current != "home" || got.Profiles[0].Current || !got.Profiles[1].Current {
					t.Errorf("profiles: %+v", got)
				}
			}},
		{name: "UseShouldRefuseAnUnknownProfile", args: []string{"profiles", "use", "nosuch"},
			wantCode: ExitUsage, wantErr: []string{`"nosuch"`}},
		{name: "AccountCommandsShouldRefuseAnUnknownProfile", args: []string{"keys", "list", "--profile", "nosuch"},
			wantCode: ExitUsage, wantErr: []string{`no profile "nosuch"`}},
		{name: "RemoveShouldDeleteTheProfileAndItsToken",
			before: func(t *testing.T) {
				if err := profile.NewKeyring().Set("home", "tok-of-home"); err != nil {
					t.Fatal(err)
				}
			},
			args: []string{"profiles", "remove", "home"}, wantOut: []string{"Removed profile home.", "No profile is current now"},
			check: func(t *testing.T, r result) {
				if tok := storedToken(t, "home"); tok != "" {
					t.Error("the profile's token is still in the keyring")
				}
				if got := profilesOf(t); got.Current != "" || len(got.Profiles) != 1 || got.Profiles[0].Name != "work" {
					t.Errorf("profiles: %+v", got)
				}
			}},
		{name: "AccountCommandsShouldAskToChooseAProfileWhenNoneIsCurrent", args: []string{"logout"},
			wantCode: ExitUsage, wantErr: []string{"no profile is current", "keydesk profiles use NAME"}},
		{name: "RemoveShouldRefuseAnUnknownProfile", args: []string{"profiles", "remove", "home"},
			wantCode: ExitUsage, wantErr: []string{`"home"`}},
		{name: "AddShouldStartSignedOutWhateverTheKeyringHeld",
			before: func(t *testing.T) {
				// A token left by an earlier profile of the name (removed
				// while the keyring was away) belongs to another RP.
				if err := profile.NewKeyring().Set("home", "tok-of-an-old-home"); err != nil {
					t.Fatal(err)
				}
			},
			args: []string{"profiles", "add", "home", "--origin", "https://localhost"},
			check: func(t *testing.T, r result) {
				if tok := storedToken(t, "home"); tok != "" {
					t.Error("the new profile inherited a token")
				}
			}},
	}, func() []string { return []string{"tok-of-"} })
}

var enrolledID = regexp.MustCompile(`its ID is ([A-Za-z0-9_-]+)`)

// TestAccountJourney: an enrollment code, a key enrolled, sign-out and a
// sign-in with the key, the list (which is plugged in), rename, two more
// keys, revocations (at once with a fresh session; after a step-up with
// another key once the session is older), the revoked key refused, the
// last key kept, an ended session, sign-out.
func TestAccountJourney(t *testing.T) {
	accountTest(t, "work")
	rp := startRP(t)
	keys := serveKeys(t, 3)
	blue, green, red := keys[0], keys[1], keys[2]
	var blueID, greenID, redID string
	token := func() []string { return []string{rp.code, storedToken(t, "work")} }
	listKeys := func(t *testing.T) map[string]accountKeyJSON {
		t.Helper()
		var got accountKeysJSON
		out := mustRun(t, "", "keys", "list", "--json")
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		byName := map[string]accountKeyJSON{}
		for _, k := range got.Keys {
			byName[k.Nickname] = k
		}
		if got.Profile != "work" || len(byName) != len(got.Keys) {
			t.Errorf("keys list --json:\n%s", out)
		}
		return byName
	}
	idOf := func(t *testing.T, r result) string {
		t.Helper()
		m := enrolledID.FindStringSubmatch(r.stdout)
		if m == nil {
			t.Fatalf("no ID in %q", r.stdout)
		}
		return m[1]
	}
	runSteps(t, []step{
		{name: "AddTheProfile", args: []string{"profiles", "add", "work", "--origin", accountOrigin, "--api-url", rp.ts.URL}},
		{name: "KeysListShouldSayNotSignedIn", args: []string{"keys", "list"},
			wantCode: ExitNotSignedIn, wantErr: []string{"not signed in to work", "keydesk login"}},
		{name: "EnrollShouldSayNotSignedInBeforeATouch", args: []string{"keys", "enroll", "--name", "blue", "--device", blue.Path},
			wantCode: ExitNotSignedIn, noStderr: []string{"Touch"}},
		{name: "LoginShouldRefuseAWrongCode", args: []string{"login", "--code-stdin", "--user", "root"}, stdin: "AAAA-BBBB-CCCC-DDDD\n",
			wantCode: ExitOther, wantErr: []string{"work refused to redeem enrollment code", "do not match a valid enrollment code"},
			check: func(t *testing.T, r result) {
				if storedToken(t, "work") != "" {
					t.Error("a token was kept")
				}
			}},
		{name: "LoginShouldRedeemTheCode", args: []string{"login", "--user", "root", "--code-stdin"}, stdin: " " + rp.code + " \n",
			wantOut: []string{"Signed in as root to work (https://localhost) with an enrollment code. Scope: register"},
			check: func(t *testing.T, r result) {
				if storedToken(t, "work") == "" {
					t.Error("no token in the keyring")
				}
			}},
		{name: "KeysListShouldSayACodeSessionOnlyEnrolls", args: []string{"keys", "list"},
			wantCode: ExitNotSignedIn, wantErr: []string{"may only enroll keys", "keydesk login"}},
		{name: "EnrollShouldEnrollTheKey", args: []string{"keys", "enroll", "--name", "blue", "--device", blue.Path},
			wantOut: []string{`Enrolled "blue" (` + softkeyModel + ") in your account at work"}, stderr: []string{"Touch your security key…"},
			check: func(t *testing.T, r result) { blueID = idOf(t, r) }},
		{name: "LogoutShouldForgetTheToken", args: []string{"logout"}, wantOut: []string{"Signed out of work."},
			check: func(t *testing.T, r result) {
				if storedToken(t, "work") != "" {
					t.Error("the token is still in the keyring")
				}
			}},
		{name: "KeysListShouldSayNotSignedInAfterLogout", args: []string{"keys", "list"}, wantCode: ExitNotSignedIn},
		{name: "LoginShouldSignInWithTheKey", args: []string{"login", "--device", blue.Path},
			wantOut: []string{"Signed in as root to work (https://localhost). Scope: full"}, stderr: []string{"Touch your security key…"}},
		{name: "KeysListShouldMarkThePluggedInKey", args: []string{"keys", "list", "--json"},
			check: func(t *testing.T, r result) {
				ks := listKeys(t)
				k, ok := ks["blue"]
				if len(ks) != 1 || !ok || k.ID != blueID || !k.PluggedIn || k.Device != blue.Path || k.Model != softkeyModel ||
					k.Revoked || k.RevokedAt != nil || k.LastUsedAt == nil || k.CreatedAt.IsZero() || k.AAGUID == "" {
					t.Errorf("keys: %+v", ks)
				}
				if strings.Contains(r.stderr, "Touch") {
					t.Errorf("listing asked for a touch: %s", r.stderr)
				}
			}},
		{name: "RenameShouldRenameTheKey", argsOf: func() []string { return []string{"keys", "rename", "--", blueID, "blue (desk)"} },
			wantOut: []string{` to "blue (desk)".`}},
		{name: "RenameShouldRefuseAnUnknownKey", args: []string{"keys", "rename", "AAAA", "x"}, wantCode: ExitOther,
			wantErr: []string{"work refused to rename key"}},
		{name: "RenameShouldRefuseAnIDThatIsNotBase64url", args: []string{"keys", "rename", "not*an*id", "x"}, wantCode: ExitUsage,
			wantErr: []string{"base64url"}},
		{name: "EnrollShouldEnrollASecondKey", args: []string{"keys", "enroll", "--name", "green", "--device", green.Path},
			check: func(t *testing.T, r result) { greenID = idOf(t, r) }},
		{name: "EnrollShouldEnrollAThirdKey", args: []string{"keys", "enroll", "--name", "red", "--device", red.Path},
			check: func(t *testing.T, r result) { redID = idOf(t, r) }},
		{name: "KeysListShouldPrintOneLineAKey", args: []string{"keys", "list"},
			check: func(t *testing.T, r result) {
				// In the service's order: by ID when enrolled at the same time.
				byID := map[string]string{}
				lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
				for _, l := range lines {
					byID[strings.Split(l, "\t")[0]] = l
				}
				b, g := byID[blueID], byID[greenID]
				if len(lines) != 3 || len(byID) != 3 || !strings.HasPrefix(b, blueID+"\tblue (desk)\t"+softkeyModel+"\tenrolled ") ||
					!strings.Contains(b, "\tlast used ") || !strings.HasSuffix(b, "\tplugged in ("+blue.Path+")") ||
					!strings.Contains(g, "\tgreen\t") || !strings.Contains(g, "\tnever used\t") {
					t.Errorf("keys list:\n%s", r.stdout)
				}
			}},
		{name: "RevokeShouldRevokeAtOnceWithAFreshSession", argsOf: func() []string { return []string{"keys", "revoke", "--reason", "stolen", "--", redID} },
			wantOut: []string{`Revoked "red" (ID `, "): stolen."}, noStderr: []string{"Touch", "fresh sign-in"}},
		{name: "RevokeShouldRefuseToStepUpWithTheKeyBeingRevoked",
			before:   func(t *testing.T) { rp.clock.Advance(10 * time.Minute) },
			argsOf:   func() []string { return []string{"keys", "revoke", "--device", blue.Path, "--", blueID} },
			wantCode: ExitOther, wantErr: []string{"another of your keys"},
			stderr: []string{"Revoking a key needs a fresh sign-in"}, noStderr: []string{"Touch"}},
		{name: "RevokeShouldStepUpWithAnotherKey", argsOf: func() []string { return []string{"keys", "revoke", "--device", green.Path, "--", blueID} },
			wantOut: []string{`Revoked "blue (desk)" (ID `, "): lost."},
			stderr:  []string{"Revoking a key needs a fresh sign-in", "Touch your security key…"}},
		{name: "KeysListShouldShowTheRevokedKeys", args: []string{"keys", "list", "--json"},
			check: func(t *testing.T, r result) {
				ks := listKeys(t)
				b, g, rd := ks["blue (desk)"], ks["green"], ks["red"]
				if b.ID != blueID || !b.Revoked || b.RevokedAt == nil || b.RevokeReason != "lost" || b.PluggedIn || b.Device != "" {
					t.Errorf("blue: %+v", b)
				}
				if rd.ID != redID || !rd.Revoked || rd.RevokeReason != "stolen" {
					t.Errorf("red: %+v", rd)
				}
				if g.ID != greenID || g.Revoked || !g.PluggedIn || g.Device != green.Path {
					t.Errorf("green: %+v", g)
				}
			}},
		{name: "RevokeShouldKeepTheLastKey", argsOf: func() []string { return []string{"keys", "revoke", "--", greenID} },
			wantCode: ExitOther, wantErr: []string{"work refused to revoke key", "last key"}},
		{name: "KeysListShouldSayTheSessionEnded",
			before: func(t *testing.T) { rp.clock.Advance(2 * time.Hour) },
			args:   []string{"keys", "list"}, wantCode: ExitNotSignedIn, wantErr: []string{"your session with work has ended"},
			check: func(t *testing.T, r result) {
				if storedToken(t, "work") != "" {
					t.Error("the ended session's token was kept")
				}
			}},
		{name: "LoginShouldRefuseTheRevokedKey", args: []string{"login", "--device", blue.Path},
			wantCode: ExitOther, wantErr: []string{"work refused to finish sign-in", "This key was revoked"}},
		{name: "LoginShouldFindNoAccountOnTheRevokedKeyUsernameFirst", args: []string{"login", "--user", "root", "--device", blue.Path},
			wantCode: ExitOther, wantErr: []string{"this security key holds no key of root for work"}},
		{name: "LoginShouldSignInUsernameFirst", args: []string{"login", "--device", green.Path, "--user", "root"},
			wantOut: []string{"Signed in as root to work"}},
		{name: "LogoutShouldEndTheSession", args: []string{"logout"}, wantOut: []string{"Signed out of work."}},
		{name: "LogoutShouldSayWhenNotSignedIn", args: []string{"logout"}, wantOut: []string{"Not signed in to work."}},
		{name: "KeysListShouldSayNotSignedInAtTheEnd", args: []string{"keys", "list"}, wantCode: ExitNotSignedIn},
	}, token)
}

// TestLoginCodeTypedAtTheTerminal: without --code-stdin the enrollment
// code is read from the terminal with the echo off, and shown nowhere.
func TestLoginCodeTypedAtTheTerminal(t *testing.T) {
	accountTest(t, "work")
	rp := startRP(t)
	mustRun(t, "", "profiles", "add", "work", "--origin", accountOrigin, "--api-url", rp.ts.URL)
	p := openPTY(t)
	s := start(t, context.Background(), p.slave, "login", "--code", "--user", "root")
	p.typeAfter(t, s, "Enrollment code: ", 0, rp.code)
	r := s.wait(t)
	if r.code != ExitOK || !strings.Contains(r.stdout, "Signed in as root to work") {
		t.Fatalf("exit %d: %v\nstdout: %s\nstderr: %s", r.code, r.err, r.stdout, r.stderr)
	}
	if p.echoOff(t) {
		t.Error("the terminal does not echo after keydesk ended")
	}
	if shown := p.closeAndShown(t); strings.Contains(shown+r.stdout+r.stderr, rp.code) {
		t.Errorf("the code was shown: terminal %q, stdout %q, stderr %q", shown, r.stdout, r.stderr)
	}
	if storedToken(t, "work") == "" {
		t.Error("no token in the keyring")
	}
}

// TestLoginArguments: what login refuses before asking anything of the
// service.
func TestLoginArguments(t *testing.T) {
	accountTest(t, "work")
	// Nothing listens at the API address: a step that reached it would
	// fail with ExitNetwork instead.
	mustRun(t, "", "profiles", "add", "work", "--origin", accountOrigin, "--api-url", "http://127.0.0.1:1")
	serveKeys(t, 1)
	runSteps(t, []step{
		{name: "ShouldRefuseTheCodeOnTheCommandLine", args: []string{"login", "--code", "--user", "root", "SECRET-CODE"},
			wantCode: ExitUsage},
		{name: "ShouldRequireAUserWithACode", args: []string{"login", "--code-stdin"}, stdin: "SECRET-CODE\n",
			wantCode: ExitUsage, wantErr: []string{"--user NAME is required"}},
		{name: "ShouldRefuseADeviceWithACode", args: []string{"login", "--code-stdin", "--user", "root", "--device", "0"}, stdin: "SECRET-CODE\n",
			wantCode: ExitUsage, wantErr: []string{"--device and --pin-stdin do not apply"}},
		{name: "ShouldRefuseAnEmptyCode", args: []string{"login", "--code-stdin", "--user", "root"}, stdin: "  \n",
			wantCode: ExitUsage, wantErr: []string{"the enrollment code is empty"}},
		{name: "ShouldSayWhenStandardInputHasNoCode", args: []string{"login", "--code-stdin", "--user", "root"},
			wantCode: ExitUsage, wantErr: []string{"--code-stdin: standard input ended before the enrollment code"}},
		{name: "EnrollShouldRequireANickname", args: []string{"keys", "enroll"},
			wantCode: ExitUsage, wantErr: []string{"--name NICKNAME is required"}},
		{name: "RevokeShouldRequireAnID", args: []string{"keys", "revoke"}, wantCode: ExitUsage},
	}, func() []string { return []string{"SECRET-CODE"} })
}

// TestServerUnreachable: a stopped service is ExitNetwork with a message
// naming the address and the cause; logout still forgets the session.
func TestServerUnreachable(t *testing.T) {
	accountTest(t, "work")
	rp := startRP(t)
	serveKeys(t, 1)
	const cause = "connection refused (tried 3 times); check the network connection, and the profile's API address"
	runSteps(t, []step{
		{name: "AddTheProfile", args: []string{"profiles", "add", "work", "--origin", accountOrigin, "--api-url", rp.ts.URL}},
		{name: "SignIn", args: []string{"login", "--code-stdin", "--user", "root"}, stdin: rp.code + "\n"},
		{name: "KeysListShouldSayTheServiceIsUnreachable", before: func(t *testing.T) { rp.ts.Close() },
			args: []string{"keys", "list"}, wantCode: ExitNetwork,
			wantErr: []string{"cannot reach the service of profile work at " + rp.ts.URL + ": " + cause}},
		{name: "LoginShouldSayTheServiceIsUnreachable", args: []string{"login", "--device", "0"}, wantCode: ExitNetwork,
			wantErr: []string{"cannot reach the service of profile work at " + rp.ts.URL + ": " + cause}, noStderr: []string{"Touch"}},
		{name: "LogoutShouldForgetTheSessionAnyway", args: []string{"logout"}, wantCode: ExitNetwork,
			wantErr: []string{"signed out on this computer (the session token is deleted), but the service of work could not be told", "connection refused"},
			check: func(t *testing.T, r result) {
				if storedToken(t, "work") != "" {
					t.Error("the token is still in the keyring")
				}
			}},
		{name: "KeysListShouldThenSayNotSignedIn", args: []string{"keys", "list"}, wantCode: ExitNotSignedIn},
	}, func() []string { return []string{rp.code} })
}

// TestLoginWithoutKeyring: with no Secret Service, login works for the
// one run and says so, and the next run is not signed in. It runs in a
// process of its own, since go-keyring keeps the connection this one
// made to the shared Secret Service.
func TestLoginWithoutKeyring(t *testing.T) {
	if !secretservicetest.InChild() {
		secretservicetest.RunInChild(t, secretservicetest.BusEnv+"="+secretservicetest.NoBus)
		return
	}
	t.Setenv(platform.ConfigEnv, filepath.Join(t.TempDir(), "config.json"))
	rp := startRP(t)
	const warning = "No keyring is available (no Secret Service is running): you will have to sign in again next time Keydesk starts"
	runSteps(t, []step{
		{name: "AddTheProfile", args: []string{"profiles", "add", "work", "--origin", accountOrigin, "--api-url", rp.ts.URL}},
		{name: "LoginShouldWarnThatTheSessionIsNotKept", args: []string{"login", "--code-stdin", "--user", "root"}, stdin: rp.code + "\n",
			wantOut: []string{"Signed in as root to work"}, stderr: []string{warning}},
		{name: "TheNextRunShouldNotBeSignedIn", args: []string{"keys", "enroll", "--name", "blue"},
			wantCode: ExitNotSignedIn, stderr: []string{warning}},
	}, func() []string { return []string{rp.code} })
}
