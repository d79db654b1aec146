//go:build linux

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keydesk/keydesk/enroll/rpclient"
	"github.com/keydesk/keydesk/platform/softkey/softkeytest"
	"github.com/keydesk/keydesk/rp/api"
	"github.com/keydesk/keydesk/rp/rptest"
)

// The recovery commands run against the same whole stack as the other
// account commands (account_linux_test.go). The phone is rptest's: a
// software passkey that verifies its user, registered in the account,
// making the recovery page's calls with what the command printed. The
// reference RP sits behind a proxy that only reads the answers carrying
// a recovery's secrets, so that the tests can check that none of them
// leaks.

// secretLog gathers the secrets the service handed out in recovery
// answers, by kind.
type secretLog struct {
	mu sync.Mutex
	// tokens are session and desktop tokens: shown nowhere, ever.
	tokens []string
	// shown are a handoff's secret and typed code: on stdout only.
	shown []string
	// redeemed are the tokens of the recovery sessions (and enrollment
	// sessions) redeems gave, newest last.
	redeemed []string
}

// lastRedeemed is the token the latest redeem gave.
func (l *secretLog) lastRedeemed(t *testing.T) string {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.redeemed) == 0 {
		t.Fatal("the proxy saw no redeem")
	}
	return l.redeemed[len(l.redeemed)-1]
}

// record takes the secrets out of an answer's JSON body; redeem says
// whether it answered a redeem.
func (l *secretLog) record(body []byte, redeem bool) {
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range []string{"token", "desktopToken"} {
		if s, ok := m[k].(string); ok && s != "" {
			l.tokens = append(l.tokens, s)
		}
	}
	for _, k := range []string{"secret", "typedCode"} {
		if s, ok := m[k].(string); ok && s != "" {
			l.shown = append(l.shown, s)
		}
	}
	if s, ok := m["token"].(string); ok && s != "" && redeem {
		l.redeemed = append(l.redeemed, s)
	}
}

// check fails the test if r shows a token anywhere, or a handoff's
// secret elsewhere than on stdout.
func (l *secretLog) check(t *testing.T, r result) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.tokens) == 0 {
		t.Fatal("the proxy recorded no token: the check would be vacuous")
	}
	errMsg := ""
	if r.err != nil {
		errMsg = r.err.Error()
	}
	for _, s := range l.tokens {
		if strings.Contains(r.stdout+r.stderr+errMsg, s) {
			t.Errorf("a session or desktop token was printed:\nstdout: %s\nstderr: %s\nerror: %s", r.stdout, r.stderr, errMsg)
		}
	}
	for _, s := range l.shown {
		if strings.Contains(r.stderr+errMsg, s) {
			t.Errorf("a handoff's secret or typed code reached stderr or the error:\nstderr: %s\nerror: %s", r.stderr, errMsg)
		}
	}
}

// teeWriter copies an answer's body as it goes out.
type teeWriter struct {
	http.ResponseWriter
	body bytes.Buffer
}

func (w *teeWriter) Write(p []byte) (int, error) {
	w.body.Write(p)
	return w.ResponseWriter.Write(p)
}

// startRecoveryRP is startRP with the proxy that records the secrets of
// the answers that carry them (a handoff's start, redeems); the events
// stream passes untouched.
func startRecoveryRP(t *testing.T) (*rpService, *secretLog) {
	t.Helper()
	log := &secretLog{}
	secretPaths := []string{api.Version + "/recovery/sessions", api.Version + "/recovery/codes/redeem", api.Version + "/grants/redeem",
		api.Version + "/login/finish"}
	s := rptest.StartServer(t, rptest.ServerOptions{RPID: accountRPID, Origin: accountOrigin,
		Wrap: func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPost || (!slices.Contains(secretPaths, r.URL.Path) && !strings.HasSuffix(r.URL.Path, "/redeem")) {
					next.ServeHTTP(w, r)
					return
				}
				tw := &teeWriter{ResponseWriter: w}
				next.ServeHTTP(tw, r)
				log.record(tw.body.Bytes(), strings.HasSuffix(r.URL.Path, "/redeem"))
			})
		}})
	return &rpService{ts: s.HTTP, code: s.Code, clock: s.Clock}, log
}

// signedInRoot adds the profile work for rp, redeems root's enrollment
// code, enrolls key as "blue" and signs in with it: a full session.
// It returns blue's ID.
func signedInRoot(t *testing.T, rp *rpService, key *softkeytest.Key) string {
	t.Helper()
	mustRun(t, "", "profiles", "add", "work", "--origin", accountOrigin, "--api-url", rp.ts.URL)
	mustRun(t, rp.code+"\n", "login", "--code-stdin", "--user", "root")
	out := mustRun(t, "", "keys", "enroll", "--name", "blue", "--device", key.Path)
	m := enrolledID.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no ID in %q", out)
	}
	mustRun(t, "", "login", "--device", key.Path)
	return m[1]
}

// addPhone registers a phone's passkey in the account of the profile's
// full session, as the user did long before losing a key.
func addPhone(t *testing.T, rp *rpService) *rptest.Key {
	t.Helper()
	phone, err := rptest.NewUVKey(accountOrigin)
	if err != nil {
		t.Fatal(err)
	}
	c := &rptest.Client{BaseURL: rp.ts.URL, Token: storedToken(t, "work")}
	if _, err := c.Register(phone, "phone"); err != nil {
		t.Fatalf("register the phone's passkey: %v", err)
	}
	return phone
}

// shownHandoff is what keydesk recover printed of its handoff.
type shownHandoff struct {
	id, secret string
	number     int
}

var (
	handoffLink   = regexp.MustCompile(`Link: ` + regexp.QuoteMeta(accountOrigin) + `/r/([A-Za-z0-9_-]+)#(\S+)\n`)
	handoffNumber = regexp.MustCompile(`pick the number (\d\d)\.\n`)
)

// waitHandoff waits until the run printed its handoff, and reads it back
// from stdout.
func waitHandoff(t *testing.T, s *started) shownHandoff {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		out := s.stdout.String()
		link, num := handoffLink.FindStringSubmatch(out), handoffNumber.FindStringSubmatch(out)
		if link != nil && num != nil && strings.Contains(s.stderr.String(), "Waiting for the approval on your phone") {
			n, _ := strconv.Atoi(num[1])
			return shownHandoff{id: link[1], secret: link[2], number: n}
		}
		select {
		case err := <-s.done:
			s.done <- err
			t.Fatalf("keydesk %v ended (%v) before showing a handoff\nstdout: %s\nstderr: %s", s.args, err, out, s.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("keydesk %v showed no handoff\nstdout: %s\nstderr: %s", s.args, out, s.stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// phoneFor is the phone that opened the link h.
func phoneFor(t *testing.T, rp *rpService, h shownHandoff) *rptest.Phone {
	t.Helper()
	p := &rptest.Phone{Client: &rptest.Client{BaseURL: rp.ts.URL}, SessionID: h.id, Proof: api.RecoveryProof{Secret: h.secret}}
	d, _, err := p.Describe()
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	if d.Username != "root" || !slices.Contains(d.Candidates, h.number) || d.DesktopName == "" {
		t.Fatalf("the phone shows %+v, want root's request with the number %02d among the candidates", d, h.number)
	}
	return p
}

// approve picks the number shown and approves with the phone's passkey.
func approve(t *testing.T, rp *rpService, h shownHandoff, phone *rptest.Key) {
	t.Helper()
	if _, err := phoneFor(t, rp, h).Approve(phone, h.number); err != nil {
		t.Fatalf("approve on the phone: %v", err)
	}
}

// keysByName lists the profile's account's keys (keys list --json) by
// nickname.
func keysByName(t *testing.T) map[string]accountKeyJSON {
	t.Helper()
	var got accountKeysJSON
	out := mustRun(t, "", "keys", "list", "--json")
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	m := map[string]accountKeyJSON{}
	for _, k := range got.Keys {
		m[k.Nickname] = k
	}
	return m
}

// wantRun fails the test unless r ended with code and its error says
// every one of msgs.
func wantRun(t *testing.T, r result, code int, msgs ...string) {
	t.Helper()
	errMsg := ""
	if r.err != nil {
		errMsg = r.err.Error()
	}
	if r.code != code {
		t.Fatalf("exit %d, want %d: %s\nstdout: %s\nstderr: %s", r.code, code, errMsg, r.stdout, r.stderr)
	}
	for _, m := range msgs {
		if !strings.Contains(errMsg, m) {
			t.Errorf("error %q lacks %q", errMsg, m)
		}
	}
}

// TestRecoverWithThePhone: root lost the key "blue". A --lost naming no
// key of the account aborts after the approval with exit 2, before
// anything is enrolled. Then the QR handoff approved on the phone,
// with the lost keys chosen at the terminal, enrolls the replacement,
// which signs in, and revokes blue, which no longer does. No token
// shows, and the handoff's secret only on stdout.
func TestRecoverWithThePhone(t *testing.T) {
	accountTest(t, "work")
	rp, secrets := startRecoveryRP(t)
	keys := serveKeys(t, 2)
	blue, green := keys[0], keys[1]
	blueID := signedInRoot(t, rp, blue)
	phone := addPhone(t, rp)
	mustRun(t, "", "logout")

	t.Run("AnUnknownLostKeyShouldEnrollNothing", func(t *testing.T) {
		s := start(t, context.Background(), strings.NewReader(""), "recover", "--user", "root", "--device", green.Path,
			"--name", "green", "--lost", "AAAA", "--pin-stdin")
		approve(t, rp, waitHandoff(t, s), phone)
		r := s.wait(t)
		wantRun(t, r, ExitUsage, "--lost AAAA is not one of the account's usable keys", "nothing was enrolled or revoked")
		if !strings.Contains(r.stderr, blueID+"  blue  ") || !strings.Contains(r.stderr, "  phone  ") {
			t.Errorf("stderr does not list the usable keys:\n%s", r.stderr)
		}
		secrets.check(t, r)
		if len(secrets.shown) < 2 {
			t.Errorf("the proxy recorded no handoff secret and typed code: %d", len(secrets.shown))
		}
		// The recovery session, useless once the command ended, was
		// ended too.
		c, err := rpclient.New(rpclient.Config{BaseURL: rp.ts.URL, Token: secrets.lastRedeemed(t)})
		if err != nil {
			t.Fatal(err)
		}
		if me, err := c.Me(context.Background()); !errors.Is(err, rpclient.ErrUnauthorized) {
			t.Errorf("the recovery session after the failure: %+v, %v; want it ended", me, err)
		}
		// The replacement holds no key of root: it was not enrolled.
		wantRun(t, run(t, "", "login", "--user", "root", "--device", green.Path), ExitOther, "holds no key of root")
	})

	t.Run("ShouldRecoverAskingWhichKeysAreLost", func(t *testing.T) {
		p := openPTY(t)
		s := start(t, context.Background(), p.slave, "recover", "--user", "root", "--device", green.Path, "--name", "green (new)")
		h := waitHandoff(t, s)
		if !strings.Contains(s.stdout.String(), "If the page asks for a code, type: ") {
			t.Errorf("no typed code:\n%s", s.stdout.String())
		}
		approve(t, rp, h, phone)
		// The question lists the usable keys, numbered, the plugged-in
		// ones marked (blue is still served here, phone is not); blue is
		// answered by its number.
		var number string
		s.waitStderr(t, "the question", func(stderr string) bool {
			if !strings.HasSuffix(stderr, "Which keys are lost? Their numbers, comma-separated (empty: none): ") {
				return false
			}
			m := regexp.MustCompile(`(?m)^ +(\d+)  ` + regexp.QuoteMeta(blueID) + `  blue  ` + regexp.QuoteMeta(softkeyModel) + `  enrolled .*  plugged in \(` +
				regexp.QuoteMeta(blue.Path) + `\)$`).FindStringSubmatch(stderr)
			if m == nil || !regexp.MustCompile(`(?m)^ +\d+  \S+  phone  .*  not plugged in$`).MatchString(stderr) {
				t.Fatalf("the usable keys are not listed as they should:\n%s", stderr)
			}
			number = m[1]
			return true
		})
		if _, err := p.master.Write([]byte("9\r")); err != nil { // out of range: asked again
			t.Fatal(err)
		}
		s.waitStderr(t, "the question again", func(stderr string) bool {
			return strings.Contains(stderr, `"9" is not a number from 1 to 2.`) && strings.HasSuffix(stderr, "(empty: none): ")
		})
		if _, err := p.master.Write([]byte(number + "\r")); err != nil {
			t.Fatal(err)
		}
		r := s.wait(t)
		wantRun(t, r, ExitOK)
		for _, w := range []string{`Enrolled "green (new)" (` + softkeyModel + ") in the account root at work; its ID is ",
			`Revoked "blue" (ID ` + blueID + "): lost.", "Recovered. Sign in with the new key: keydesk login --profile work"} {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("stdout lacks %q:\n%s", w, r.stdout)
			}
		}
		if !strings.Contains(r.stderr, "Approved on the phone.") || !strings.Contains(r.stderr, "Touch your security key…") {
			t.Errorf("stderr:\n%s", r.stderr)
		}
		secrets.check(t, r)
	})

	t.Run("TheReplacementShouldSignIn", func(t *testing.T) {
		r := run(t, "", "login", "--device", green.Path)
		wantRun(t, r, ExitOK)
		ks := keysByName(t)
		if g, b := ks["green (new)"], ks["blue"]; len(ks) != 3 || g.Revoked || !g.PluggedIn || !b.Revoked || b.RevokeReason != "lost" || b.ID != blueID {
			t.Errorf("keys after the recovery: %+v", ks)
		}
	})
	t.Run("TheLostKeyShouldNotSignIn", func(t *testing.T) {
		wantRun(t, run(t, "", "login", "--device", blue.Path), ExitOther, "This key was revoked")
	})
}

// TestRecoverStopped: a handoff that does not end in an approval ends the
// command with the reason, and nothing enrolled: the wrong number picked
// on the phone (exit 1), Ctrl-C (exit 5, the countdown on a terminal
// cleared), nobody approving in time (exit 5).
func TestRecoverStopped(t *testing.T) {
	accountTest(t, "work")
	rp, secrets := startRecoveryRP(t)
	keys := serveKeys(t, 2)
	signedInRoot(t, rp, keys[0])
	phone := addPhone(t, rp)
	mustRun(t, "", "logout")
	args := []string{"recover", "--user", "root", "--device", keys[1].Path, "--name", "green", "--lost", "none"}

	t.Run("AWrongNumberShouldExit1WithTheReason", func(t *testing.T) {
		s := start(t, context.Background(), nil, args...)
		h := waitHandoff(t, s)
		p := phoneFor(t, rp, h)
		wrong := (h.number+1)%90 + 10
		if _, _, err := p.Begin(wrong); err == nil {
			t.Errorf("the server took the wrong number %02d (shown: %02d)", wrong, h.number)
		}
		r := s.wait(t)
		wantRun(t, r, ExitOther, "On the phone, a number other than the one this computer shows was picked")
		if strings.Contains(r.stdout, "Enrolled") {
			t.Errorf("stdout: %s", r.stdout)
		}
		secrets.check(t, r)
	})

	t.Run("CtrlCShouldExit5AndClearTheCountdown", func(t *testing.T) {
		// stderr is a terminal: the countdown rewrites one line.
		p := openPTY(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var out syncBuffer
		done := make(chan error, 1)
		go func() { done <- Run(ctx, args, nil, &out, p.slave) }()
		deadline := time.Now().Add(waitTimeout)
		countdown := regexp.MustCompile(`\rWaiting for the approval on your phone: \d:\d\d left `)
		for len(countdown.FindAllString(p.shown.String(), -1)) < 2 {
			if time.Now().After(deadline) {
				t.Fatalf("the terminal shows no running countdown: %q", p.shown.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		var err error
		select {
		case err = <-done:
		case <-time.After(waitTimeout):
			t.Fatal("keydesk recover did not end on Ctrl-C")
		}
		shown := p.closeAndShown(t)
		r := resultOf(t, args, out.String(), shown, err)
		wantRun(t, r, ExitCancelled, "cancelled: the recovery request can no longer be used from this computer")
		if !strings.HasSuffix(shown, "\r\033[K") {
			t.Errorf("the countdown's line was not cleared: %q", shown)
		}
		if strings.Contains(shown, "\n") {
			t.Errorf("the countdown printed lines rather than rewriting one: %q", shown)
		}
		secrets.check(t, r)
	})

	t.Run("NobodyApprovingShouldExit5", func(t *testing.T) {
		s := start(t, context.Background(), nil, args...)
		h := waitHandoff(t, s)
		rp.clock.Advance(3*time.Minute + time.Second) // the server's RecoveryTTL
		r := s.wait(t)
		wantRun(t, r, ExitCancelled, "Nobody approved the request on the phone in time")
		// The page learns it too.
		p := &rptest.Phone{Client: &rptest.Client{BaseURL: rp.ts.URL}, SessionID: h.id, Proof: api.RecoveryProof{Secret: h.secret}}
		if _, err := p.Approve(phone, h.number); err == nil || !strings.Contains(err.Error(), "recovery_expired") {
			t.Errorf("approving the expired request: %v", err)
		}
		secrets.check(t, r)
	})
}

// codesIn reads the recovery codes out of what recovery-codes generate
// wrote.
var codePattern = regexp.MustCompile(`(?m)^ *\d+\. ([0-9A-Z]{5}(?:-[0-9A-Z]{5}){3})$`)

// readCodes reads the codes of a file recovery-codes generate --out
// wrote, checking its mode and header.
func readCodes(t *testing.T, path string) []string {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	today := time.Now().Format("2006-01-02")
	for _, w := range []string{"Keydesk recovery codes for the account root at work (" + accountOrigin + "), generated " + today,
		"Each code works once.", "keydesk recover --code --user root"} {
		if !strings.Contains(text, w) {
			t.Errorf("%s lacks %q:\n%s", path, w, text)
		}
	}
	var codes []string
	for _, m := range codePattern.FindAllStringSubmatch(text, -1) {
		codes = append(codes, m[1])
	}
	if len(codes) != 10 {
		t.Fatalf("%d codes in %s, want 10:\n%s", len(codes), path, text)
	}
	return codes
}

// codesStatus runs recovery-codes --json.
func codesStatus(t *testing.T) recoveryCodesJSON {
	t.Helper()
	var st recoveryCodesJSON
	out := mustRun(t, "", "recovery-codes", "--json")
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return st
}

// TestRecoverWithARecoveryCode: recovery codes are made into a new file
// only the user may read (never over an existing one, and never replacing
// unused ones unconfirmed), counted, and redeemed once each by recover
// --code; a wrong or used code is exit 1. A new set, after the fresh
// sign-in the service asks for, makes the old codes worthless. No code
// shows anywhere but in its file.
func TestRecoverWithARecoveryCode(t *testing.T) {
	accountTest(t, "work")
	rp, secrets := startRecoveryRP(t)
	keys := serveKeys(t, 2)
	blue, green := keys[0], keys[1]
	blueID := signedInRoot(t, rp, blue)
	dir := t.TempDir()
	first, second := filepath.Join(dir, "codes.txt"), filepath.Join(dir, "codes-2.txt")
	var codes, newCodes []string
	recoverArgs := []string{"recover", "--code-stdin", "--user", "root", "--device", green.Path, "--name", "green", "--pin-stdin"}
	runSteps(t, []step{
		{name: "StatusShouldSayThereAreNone", args: []string{"recovery-codes"}, wantOut: []string{"You have no recovery codes at work"}},
		{name: "GenerateShouldWriteAFileOnlyTheUserReads", args: []string{"recovery-codes", "generate", "--out", first},
			wantOut: []string{"Wrote 10 recovery codes for root at work to " + first + " (readable by you only)."},
			check:   func(t *testing.T, r result) { codes = readCodes(t, first) }},
		{name: "GenerateShouldNeverOverwriteAFile", args: []string{"recovery-codes", "generate", "--yes", "--out", first},
			wantCode: ExitUsage, wantErr: []string{first + " exists"},
			check: func(t *testing.T, r result) {
				if again := readCodes(t, first); !slices.Equal(again, codes) {
					t.Error("the file was changed")
				}
			}},
		{name: "GenerateShouldAskBeforeReplacingUnusedCodes", args: []string{"recovery-codes", "generate", "--out", second}, stdin: "no\n",
			wantCode: ExitOther, wantErr: []string{"not confirmed; your recovery codes are unchanged"},
			stderr: []string{"You have 10 unused recovery codes at work; a new set replaces them"},
			check: func(t *testing.T, r result) {
				if _, err := os.Stat(second); !os.IsNotExist(err) {
					t.Errorf("the file of a set not made was left: %v", err)
				}
			}},
		{name: "StatusShouldCountTenLeft", args: []string{"recovery-codes"}, wantOut: []string{"10 of 10 recovery codes left at work (generated "},
			check: func(t *testing.T, r result) {
				if st := codesStatus(t); st.Profile != "work" || st.Remaining != 10 || st.Total != 10 || st.GeneratedAt == nil {
					t.Errorf("recovery-codes --json: %+v", st)
				}
			}},
	}, nil)
	// The codes are known now: no step may show one.
	noCodes := func() []string { return append(slices.Clone(codes), newCodes...) }
	runSteps(t, []step{
		{name: "SignOut", args: []string{"logout"}},
		{name: "AWrongCodeShouldExit1", args: append(slices.Clone(recoverArgs), "--lost", blueID), stdin: "AAAAA-BBBBB-CCCCC-DDDDD\n",
			wantCode: ExitOther, wantErr: []string{"that user name and recovery code do not match"}},
		{name: "ACodeShouldRecover", args: append(slices.Clone(recoverArgs), "--lost", blueID),
			stdin:   " " + strings.ToLower(codes[0]) + " \n", // case and spaces do not matter
			wantOut: []string{`Enrolled "green" (` + softkeyModel + ") in the account root at work", `Revoked "blue" (ID ` + blueID + "): lost."},
			check:   func(t *testing.T, r result) { secrets.check(t, r) }},
		{name: "AUsedCodeShouldExit1", args: append(slices.Clone(recoverArgs), "--lost", "none"), stdin: codes[0] + "\n",
			wantCode: ExitOther, wantErr: []string{"it was used already, and each code works once"}},
		{name: "TheReplacementShouldSignIn", args: []string{"login", "--device", green.Path}, wantOut: []string{"Signed in as root to work"}},
		{name: "StatusShouldCountTheCodeUsed", args: []string{"recovery-codes", "--json"},
			check: func(t *testing.T, r result) {
				if st := codesStatus(t); st.Remaining != 9 || st.Total != 10 {
					t.Errorf("recovery-codes --json after a recovery: %+v", st)
				}
			}},
		{name: "GenerateShouldSignInAfreshWhenTheServiceAsks",
			before:  func(t *testing.T) { rp.clock.Advance(6 * time.Minute) }, // past the step-up window
			args:    []string{"recovery-codes", "generate", "--yes", "--device", green.Path, "--out", second},
			wantOut: []string{"Wrote 10 recovery codes"},
			stderr:  []string{"Making recovery codes needs a fresh sign-in", "Touch your security key…"},
			check:   func(t *testing.T, r result) { newCodes = readCodes(t, second) }},
		{name: "StatusShouldCountTheNewSet", args: []string{"recovery-codes"}, wantOut: []string{"10 of 10 recovery codes left"}},
		{name: "SignOutAgain", args: []string{"logout"}},
		{name: "AnOldCodeShouldNoLongerWork", args: append(slices.Clone(recoverArgs), "--lost", "none"), stdin: codes[1] + "\n",
			wantCode: ExitOther, wantErr: []string{"do not match"}},
	}, noCodes)
}

// helpdesk is root as an admin at rp, in a session of its own (the
// reference RP's helpdesk routes are the admins' too), signed in with an
// in-process key: the CLI's profile is the user's.
func helpdesk(t *testing.T, rp *rpService) *rpclient.Client {
	t.Helper()
	c := &rptest.Client{BaseURL: rp.ts.URL}
	if _, err := c.Redeem("root", rp.code); err != nil {
		t.Fatal(err)
	}
	k, err := rptest.NewKey(accountOrigin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Register(k, "admin key"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Login(k, "root"); err != nil {
		t.Fatal(err)
	}
	admin, err := rpclient.New(rpclient.Config{BaseURL: rp.ts.URL, Token: c.Token})
	if err != nil {
		t.Fatal(err)
	}
	return admin
}

// TestRecoverWithAHelpdeskCode: the helpdesk vouches for alice, who lost
// her key: its recovery code recovers her account once; a wrong or used
// code is exit 1, and so is one still waiting for a second helpdesk
// member (four eyes), saying so. An enrollment code given instead
// enrolls the replacement rather than being wasted, and says that
// nothing was revoked.
func TestRecoverWithAHelpdeskCode(t *testing.T) {
	ctx := context.Background()
	accountTest(t, "work")
	rp, secrets := startRecoveryRP(t)
	keys := serveKeys(t, 3)
	blue, green, red := keys[0], keys[1], keys[2]
	admin := helpdesk(t, rp)
	if _, err := admin.CreateUser(ctx, api.CreateUserRequest{Name: "alice", DisplayName: "Alice Liddell"}); err != nil {
		t.Fatal(err)
	}
	g, err := admin.IssueGrant(ctx, "alice", api.IssueGrantRequest{})
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, "", "profiles", "add", "work", "--origin", accountOrigin, "--api-url", rp.ts.URL)
	mustRun(t, g.Code+"\n", "login", "--code-stdin", "--user", "alice")
	m := enrolledID.FindStringSubmatch(mustRun(t, "", "keys", "enroll", "--name", "blue", "--device", blue.Path))
	if m == nil {
		t.Fatal("no ID for blue")
	}
	blueID := m[1]
	mustRun(t, "", "logout")

	checklist, err := admin.RecoveryChecklist(ctx)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(t *testing.T) string {
		t.Helper()
		rg, err := admin.IssueRecoveryGrant(ctx, "alice", api.IssueRecoveryGrantRequest{Verification: checklist.Items, Note: "called back"})
		if err != nil {
			t.Fatal(err)
		}
		return rg.Code
	}
	grant := issue(t)
	withGrant := func(device string, lost string) []string {
		return []string{"recover", "--grant-stdin", "--user", "alice", "--device", device, "--name", "new " + filepath.Base(device), "--lost", lost}
	}
	runSteps(t, []step{
		{name: "AWrongCodeShouldExit1", args: withGrant(green.Path, blueID), stdin: "AAAA-BBBB-CCCC-DDDD\n",
			wantCode: ExitOther, wantErr: []string{"work refused the helpdesk recovery code: that user name and code do not match"}},
		{name: "TheCodeShouldRecover", args: withGrant(green.Path, blueID), stdin: grant + "\n",
			wantOut: []string{`Enrolled "new ` + filepath.Base(green.Path) + `" (` + softkeyModel + ") in the account alice at work",
				`Revoked "blue" (ID ` + blueID + "): lost.", "Recovered."},
			check: func(t *testing.T, r result) { secrets.check(t, r) }},
		{name: "AUsedCodeShouldExit1", args: withGrant(red.Path, "none"), stdin: grant + "\n",
			wantCode: ExitOther, wantErr: []string{"or the code expired or was used"}},
	}, func() []string { return []string{grant, g.Code} })

	t.Run("ACodeWaitingForASecondMemberShouldSaySo", func(t *testing.T) {
		pol, err := admin.Policy(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pol.RecoveryFourEyes = true
		if _, err := admin.SetPolicy(ctx, *pol); err != nil {
			t.Fatal(err)
		}
		pending := issue(t)
		r := run(t, pending+"\n", withGrant(red.Path, "none")...)
		wantRun(t, r, ExitOther, "waits for a second helpdesk member's approval", "the code still works")
		if strings.Contains(r.stdout+r.stderr+r.err.Error(), pending) {
			t.Error("the code was printed")
		}
	})
	t.Run("AnEnrollmentCodeShouldEnrollTheReplacementOnly", func(t *testing.T) {
		enrollment := mustIssue(t, admin)
		r := run(t, enrollment+"\n", withGrant(red.Path, "none")...)
		wantRun(t, r, ExitOK)
		if !strings.Contains(r.stdout, `Enrolled "new `+filepath.Base(red.Path)+`"`) ||
			!strings.Contains(r.stdout, "That was an enrollment code, not a helpdesk recovery code") {
			t.Errorf("stdout: %s", r.stdout)
		}
		secrets.check(t, r)
	})
	t.Run("TheReplacementsShouldSignIn", func(t *testing.T) {
		mustRun(t, "", "login", "--user", "alice", "--device", red.Path)
		ks := keysByName(t)
		if len(ks) != 3 || !ks["blue"].Revoked || ks["new "+filepath.Base(green.Path)].Revoked || ks["new "+filepath.Base(red.Path)].Revoked {
			t.Errorf("alice's keys: %+v", ks)
		}
	})
}

// mustIssue issues alice an enrollment code.
func mustIssue(t *testing.T, admin *rpclient.Client) string {
	t.Helper()
	g, err := admin.IssueGrant(context.Background(), "alice", api.IssueGrantRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return g.Code
}

// TestRecoverArguments: what recover and recovery-codes refuse before
// asking anything of the service (none listens: a step that reached it
// would be exit 7 instead), and a service out of reach.
func TestRecoverArguments(t *testing.T) {
	accountTest(t, "work")
	mustRun(t, "", "profiles", "add", "work", "--origin", accountOrigin, "--api-url", "http://127.0.0.1:1")
	serveKeys(t, 1)
	base := []string{"recover", "--user", "root", "--name", "new", "--pin-stdin"}
	with := func(args ...string) []string { return append(slices.Clone(base), args...) }
	runSteps(t, []step{
		{name: "ShouldRequireAUser", args: []string{"recover", "--name", "new", "--lost", "none"},
			wantCode: ExitUsage, wantErr: []string{"--user NAME is required"}},
		{name: "ShouldRequireANickname", args: []string{"recover", "--user", "root", "--lost", "none"},
			wantCode: ExitUsage, wantErr: []string{"--name NICKNAME is required"}},
		{name: "ShouldRefuseCodeAndGrantTogether", args: with("--code-stdin", "--grant", "--lost", "none"), stdin: "SECRET-CODE\n",
			wantCode: ExitUsage, wantErr: []string{"--code and --grant exclude each other"}},
		{name: "ShouldRefuseTheCodeOnTheCommandLine", args: with("--code", "--lost", "none", "SECRET-CODE"), wantCode: ExitUsage},
		{name: "ShouldRefuseALostIDThatIsNotBase64url", args: with("--lost", "AAAA,not*an*id"),
			wantCode: ExitUsage, wantErr: []string{`--lost: "not*an*id" is not a key ID`}},
		{name: "ShouldRefuseALostIDTwice", args: with("--lost", "AAAA, AAAA"), wantCode: ExitUsage, wantErr: []string{"--lost names AAAA twice"}},
		{name: "ShouldRequireLostWithoutATerminal", args: with(), wantCode: ExitUsage,
			wantErr: []string{"--lost ID,... (or --lost none) is required when standard input is not a terminal"}},
		{name: "ShouldRefuseAnEmptyReason", args: with("--lost", "none", "--reason", " "), wantCode: ExitUsage, wantErr: []string{"--reason"}},
		{name: "ShouldRefuseAnEmptyCode", args: with("--code-stdin", "--lost", "none"), stdin: " \n",
			wantCode: ExitUsage, wantErr: []string{"the recovery code is empty"}},
		{name: "ShouldSayWhenTheServiceIsOutOfReach", args: with("--code-stdin", "--lost", "none"), stdin: "SECRET-CODE\n",
			wantCode: ExitNetwork, wantErr: []string{"cannot reach the service of profile work"}},
		{name: "CodesStatusShouldSayNotSignedIn", args: []string{"recovery-codes", "--json"},
			wantCode: ExitNotSignedIn, wantErr: []string{"not signed in to work"}},
		{name: "GenerateShouldSayNotSignedInBeforeCreatingTheFile", args: []string{"recovery-codes", "generate", "--out", filepath.Join(t.TempDir(), "c.txt")},
			wantCode: ExitNotSignedIn},
		{name: "CodesShouldRefuseAnUnknownSubcommand", args: []string{"recovery-codes", "print"}, wantCode: ExitUsage},
	}, func() []string { return []string{"SECRET-CODE"} })
	if !MayWait([]string{"recover"}) || !MayWait([]string{"recovery-codes", "generate"}) {
		t.Error("recover and recovery-codes generate wait for the user (a phone, a touch, a confirmation): Ctrl-C must cancel them")
	}
}
