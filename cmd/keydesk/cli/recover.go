package cli

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/keydesk/keydesk/enroll"
	"github.com/keydesk/keydesk/enroll/rpclient"
	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/recovery"
	"github.com/keydesk/keydesk/rp/api"
)

// Account recovery from a terminal: "keydesk recover" gets a recovery
// session (a QR handoff approved on the phone, a recovery code, or a
// helpdesk recovery code) and walks through it with recovery.Recover:
// the replacement key is enrolled, then the lost ones are revoked.
// "keydesk recovery-codes" reads and renews the signed-in account's
// recovery codes.
//
// The secrets of a recovery (the handoff's desktop token and ephemeral
// key, the recovery session's token, a recovery code) never reach stdout,
// stderr or an error message. The handoff's link holds its secret in the
// fragment: it is printed on stdout, with the QR code and the typed
// code, because showing it to the person at the terminal is the point;
// it goes nowhere else.

// The recovery codes keydesk recover reads: never from the command line,
// as for every secret.
var (
	secretRecoveryCode = secretKind{what: "recovery code", stdinFlag: "--code-stdin"}
	secretGrantCode    = secretKind{what: "helpdesk recovery code", stdinFlag: "--grant-stdin"}
)

// recoverOptions is the command line of keydesk recover, checked.
type recoverOptions struct {
	f                               *flags
	profile, user, nickname, reason string
	// code and grant choose a recovery code or a helpdesk recovery code
	// over the QR handoff; codeStdin reads either from standard input.
	code, grant, codeStdin bool
	// lost are the IDs --lost names (empty for --lost none); ask is set
	// without --lost: the terminal is asked which keys are lost.
	lost []string
	ask  bool
	// invertQR draws the QR code for dark text on a light background.
	invertQR bool
}

// spentNote says, after a failure once the session was granted, what
// became of what granted it.
func (o *recoverOptions) spentNote() string {
	switch {
	case o.code:
		return " The recovery code is used up: use another one next time."
	case o.grant:
		return " The helpdesk recovery code is used up: ask your helpdesk for a new one."
	}
	return ""
}

// recoverArgs parses and checks the command line of keydesk recover,
// before anything is asked of the service or a key.
func (e *env) recoverArgs(args []string) (*recoverOptions, error) {
	f := e.newFlags("recover", false, true, true)
	o := &recoverOptions{f: f}
	f.StringVar(&o.profile, "profile", "", "the profile to use (default: the current one)")
	f.StringVar(&o.user, "user", "", "the account to recover")
	f.StringVar(&o.nickname, "name", "", "the replacement key's nickname")
	f.StringVar(&o.reason, "reason", "lost", "why the lost keys are revoked, such as lost or stolen")
	f.BoolVar(&o.code, "code", false, "use a recovery code, read from the terminal without echo")
	codeStdin := f.Bool("code-stdin", false, "read the recovery code from a line of standard input (implies --code)")
	f.BoolVar(&o.grant, "grant", false, "use a recovery code from the helpdesk, read from the terminal without echo")
	grantStdin := f.Bool("grant-stdin", false, "read the helpdesk's recovery code from a line of standard input (implies --grant)")
	f.BoolVar(&o.invertQR, "invert-qr", false, "draw the QR code for a terminal with dark text on a light background")
	lost, lostSet := "", false
	f.Func("lost", "the lost keys' IDs, comma-separated, or none", func(s string) error {
		lost, lostSet = s, true
		return nil
	})
	if _, err := f.parse(args, 0); err != nil {
		return nil, err
	}
	o.code = o.code || *codeStdin
	o.grant = o.grant || *grantStdin
	o.codeStdin = *codeStdin || *grantStdin
	switch {
	case o.code && o.grant:
		return nil, usageError("recover: --code and --grant exclude each other: a recovery code is yours, a helpdesk recovery code the helpdesk's")
	case strings.TrimSpace(o.user) == "":
		return nil, usageError("recover: --user NAME is required: the account to recover")
	case strings.TrimSpace(o.nickname) == "":
		return nil, usageError("recover: --name NICKNAME is required, to tell the replacement key from your others")
	case strings.TrimSpace(o.reason) == "":
		return nil, usageError("recover: --reason must say why the lost keys are revoked, such as lost or stolen")
	}
	if lostSet {
		ids, err := parseLost(lost)
		if err != nil {
			return nil, err
		}
		o.lost = ids
		return o, nil
	}
	// Without --lost the question is asked on standard input, which
	// must then be the person at the terminal rather than a PIN or a
	// code: checked now, before a code is spent.
	if f.pinStdin || o.codeStdin || !isTerminal(e.stdin) {
		return nil, usageError("recover: --lost ID,... (or --lost none) is required when standard input is not a terminal or carries a PIN or code: " +
			"there is no one to ask which keys are lost")
	}
	o.ask = true
	return o, nil
}

// parseLost parses --lost: key IDs as keys list prints them (base64url,
// padding optional), comma-separated, or "none".
func parseLost(s string) ([]string, error) {
	if strings.EqualFold(strings.TrimSpace(s), "none") {
		return []string{}, nil
	}
	ids := []string{}
	for part := range strings.SplitSeq(s, ",") {
		id := strings.TrimRight(strings.TrimSpace(part), "=")
		if b, err := base64.RawURLEncoding.DecodeString(id); err != nil || len(b) == 0 {
			return nil, usageError("recover: --lost: %q is not a key ID (base64url, as keydesk keys list prints it); give IDs separated by commas, or none", part)
		}
		if slices.Contains(ids, id) {
			return nil, usageError("recover: --lost names %s twice", id)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// isTerminal reports whether f is a terminal; a writer is looked through
// the lockedWriter Run puts around stderr.
func isTerminal(f any) bool {
	if l, ok := f.(*lockedWriter); ok {
		f = l.w
	}
	file, ok := f.(*os.File)
	return ok && term.IsTerminal(int(file.Fd()))
}

// recover is "keydesk recover": a locked-out user's way back into their
// account, without a session: a recovery session, from the phone (the QR
// handoff), a recovery code or a helpdesk recovery code, enrolls the
// replacement key and revokes the lost ones.
func (e *env) recover(ctx context.Context, args []string) error {
	o, err := e.recoverArgs(args)
	if err != nil {
		return err
	}
	if o.codeStdin && o.f.pinStdin && e.stdin != nil {
		// The code and the PINs come from standard input, one a line:
		// one buffer for all, else the code's reader would swallow the
		// PINs after it.
		e.stdin = bufio.NewReader(e.stdin)
	}
	acc, done, err := e.openAccount(ctx, o.profile, o.f.pinStdin, o.user)
	if err != nil {
		return err
	}
	defer done()
	// The recovery is not the profile's session, if there is one (it
	// may be another account's): the service gets no token from it.
	anon, err := acc.api.WithToken("")
	if err != nil {
		return err
	}
	// The replacement is chosen first: no key is exit 3 before a code is
	// spent or the phone asked, and with several keys the touch that
	// picks one comes before the wait for the phone.
	return e.withKey(ctx, o.f, func(key platform.Authenticator) error {
		var token, scope string
		var err error
		if o.code || o.grant {
			token, scope, err = e.redeemRecoveryCode(ctx, acc, anon, o)
		} else {
			token, err = e.handoff(ctx, acc, anon, o)
			scope = "recovery"
		}
		if err != nil {
			return err
		}
		if scope == "register" {
			return e.enrollOnly(ctx, acc, o, key, token)
		}
		connected := e.connectedKeys(ctx)
		defer closeAll(connected)
		sum, err := recovery.Recover(ctx, acc.cfg, token, recovery.Plan{
			Replacement: key, Nickname: o.nickname, Connected: connected, Reason: o.reason,
			SelectLost: func(usable []enroll.Key) ([]string, error) { return e.selectLost(ctx, acc, o, usable) },
		})
		e.printRecovered(acc, sum, err == nil)
		if err != nil {
			// The session lives in this process only: end it rather than
			// leave it open for minutes, unless the service is out of
			// reach anyway.
			if !errors.Is(err, rpclient.ErrNetwork) {
				endRecovery(acc.cfg, token)
			}
			var ee *ExitError
			if errors.As(err, &ee) {
				return ee
			}
			if errors.Is(err, recovery.ErrUnknownKey) {
				return usageError("recover: a key chosen as lost is not one of the account's usable keys; nothing was changed.%s", o.spentNote())
			}
			return acc.recoveryFail(err)
		}
		return nil
	})
}

// endRecovery ends the recovery session of token, best effort and
// briefly: it is called on the way out after a failure.
func endRecovery(cfg enroll.Config, token string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cfg.UI = enroll.UI{}
	if s, err := recovery.Begin(ctx, cfg, token); err == nil {
		s.End(ctx)
	}
}

// handoff runs the QR handoff: it shows the QR code, the link, the typed
// code and the number on stdout, counts down on stderr while the phone
// is awaited, and redeems the approval. It returns the recovery
// session's token.
func (e *env) handoff(ctx context.Context, acc *account, anon *rpclient.Client, o *recoverOptions) (string, error) {
	desktop, err := os.Hostname()
	if err != nil || desktop == "" {
		desktop = "keydesk"
	}
	h, err := recovery.Start(ctx, anon, o.user, desktop)
	if err != nil {
		return "", acc.fail(err)
	}
	// Close forgets the ephemeral key however this ends: nothing can
	// redeem the handoff from here afterwards.
	defer h.Close()
	qr, err := h.QRText(o.invertQR)
	if err != nil {
		return "", err // go-qrcode's errors do not repeat the link
	}
	fmt.Fprintf(e.stdout, "Recovering the account %s at %s (%s).\n\n%s\n", o.user, acc.prof.Name, acc.prof.Origin, qr)
	fmt.Fprintf(e.stdout, "Scan the code with your phone, or open the link; pick the number %02d.\n", h.Number())
	fmt.Fprintf(e.stdout, "  Link: %s\n", h.URL())
	fmt.Fprintf(e.stdout, "  If the page asks for a code, type: %s\n", h.TypedCode())
	fmt.Fprintf(e.stdout, "  The number to pick: %02d\n", h.Number())
	fmt.Fprintf(e.stdout, "Then approve with your passkey on the phone. The request expires at %s (in %s); if it was not you who scanned the code, do not approve.\n",
		h.Deadline().Local().Format("15:04:05"), minSec(h.Remaining(time.Now())))
	stop := e.countdown(h)
	out, err := h.Wait(ctx)
	stop()
	if err != nil {
		if ctx.Err() != nil {
			return "", acc.exit(ExitCancelled, err, "cancelled: the recovery request can no longer be used from this computer")
		}
		return "", acc.recoveryFail(err)
	}
	switch out.Status {
	case recovery.Refused:
		return "", acc.exit(ExitOther, out.Err(), "%s", out.Reason)
	case recovery.Expired:
		return "", acc.exit(ExitCancelled, out.Err(), "%s", out.Reason)
	}
	fmt.Fprintln(e.stderr, "Approved on the phone.")
	return e.redeemHandoff(ctx, acc, h)
}

// redeemHandoff trades the approval for the recovery session. A redeem
// whose answer never came is sent again, as recovery.Handoff allows (the
// same signature; the service answers "used" if the first one went
// through).
func (e *env) redeemHandoff(ctx context.Context, acc *account, h *recovery.Handoff) (string, error) {
	for attempt := 1; ; attempt++ {
		_, token, err := h.Redeem(ctx)
		if err == nil {
			return token, nil
		}
		if attempt < 3 && ctx.Err() == nil && (errors.Is(err, rpclient.ErrNetwork) || errors.Is(err, rpclient.ErrServer)) {
			t := time.NewTimer(time.Second)
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C:
			}
			continue
		}
		switch {
		case ctx.Err() != nil:
			return "", acc.exit(ExitCancelled, err, "cancelled: the recovery request can no longer be used from this computer")
		case errors.Is(err, recovery.ErrExpired):
			return "", acc.exit(ExitCancelled, err, "the approval expired before this computer could use it: start again")
		case errors.Is(err, recovery.ErrUsed):
			return "", acc.exit(ExitOther, err, "the approval was used already (an answer of %s may have been lost on the way): start again", acc.prof.Name)
		}
		return "", acc.recoveryFail(err)
	}
}

// countdown shows the time left on stderr until stop is called: on a
// terminal one line rewritten every second, else (a log) one line every
// 30 seconds.
func (e *env) countdown(h *recovery.Handoff) (stop func()) {
	tty := isTerminal(e.stderr)
	every := 30 * time.Second
	if tty {
		every = time.Second
	}
	quit, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		show := func() {
			left := minSec(h.Remaining(time.Now()))
			if tty {
				fmt.Fprintf(e.stderr, "\rWaiting for the approval on your phone: %s left ", left)
			} else {
				fmt.Fprintf(e.stderr, "Waiting for the approval on your phone: %s left\n", left)
			}
		}
		show()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-quit:
				if tty {
					fmt.Fprint(e.stderr, "\r\033[K") // clear the countdown's line
				}
				return
			case <-t.C:
				show()
			}
		}
	}()
	return func() {
		close(quit)
		<-finished
	}
}

// minSec is d as m:ss, rounded up (a countdown shows 0:00 only at its
// end).
func minSec(d time.Duration) string {
	s := int((d + time.Second - 1) / time.Second)
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// redeemRecoveryCode reads a recovery code (--code) or a helpdesk
// recovery code (--grant), without echo or from a line of standard
// input, and trades it for a session: its token and scope.
func (e *env) redeemRecoveryCode(ctx context.Context, acc *account, anon *rpclient.Client, o *recoverOptions) (token, scope string, err error) {
	kind, prompt := secretRecoveryCode, "Recovery code: "
	if o.grant {
		kind, prompt = secretGrantCode, "Helpdesk recovery code: "
	}
	r, err := e.secretReader(ctx, kind, o.codeStdin)
	if err != nil {
		return "", "", err
	}
	c, err := r.read(prompt)
	r.close()
	if err != nil {
		return "", "", err
	}
	if c = strings.TrimSpace(c); c == "" {
		return "", "", usageError("recover: the %s is empty", kind.what)
	}
	if o.code {
		_, token, err := recovery.RedeemCode(ctx, anon, o.user, c)
		switch {
		case errors.Is(err, recovery.ErrBadCode):
			return "", "", acc.exit(ExitOther, err, "%s refused the recovery code: that user name and recovery code do not match "+
				"(a code of an older set no longer works); check both and try again", acc.prof.Name)
		case errors.Is(err, recovery.ErrCodeUsed):
			return "", "", acc.exit(ExitOther, err, "%s refused the recovery code: it was used already, and each code works once; use another of your codes", acc.prof.Name)
		case err != nil:
			return "", "", acc.recoveryFail(err)
		}
		return token, "recovery", nil
	}
	sess, token, err := anon.RedeemGrant(ctx, o.user, c)
	switch {
	case errors.Is(err, rpclient.ErrGrantPending):
		return "", "", acc.exit(ExitOther, err, "this helpdesk recovery code waits for a second helpdesk member's approval: "+
			"ask your helpdesk to have it approved, then run this again (the code still works)")
	case errors.Is(err, rpclient.ErrUnauthorized):
		return "", "", acc.exit(ExitOther, err, "%s refused the helpdesk recovery code: that user name and code do not match, "+
			"or the code expired or was used; check both, or ask your helpdesk for a new code", acc.prof.Name)
	case err != nil:
		return "", "", acc.recoveryFail(err)
	}
	return token, sess.Scope, nil
}

// enrollOnly is what a helpdesk enrollment code given to recover --grant
// can do: enroll the replacement, not revoke. Redeeming spent the code,
// so the enrollment is made rather than the code wasted.
func (e *env) enrollOnly(ctx context.Context, acc *account, o *recoverOptions, key platform.Authenticator, token string) error {
	s, err := recovery.Begin(ctx, acc.cfg, token)
	if err != nil {
		return acc.recoveryFail(err)
	}
	k, err := s.EnrollReplacement(ctx, key, o.nickname)
	if err != nil {
		endRecovery(acc.cfg, token)
		return acc.recoveryFail(err)
	}
	_ = s.End(ctx) // best effort: the session lives in this process only
	fmt.Fprintf(e.stdout, "Enrolled %q (%s) in the account %s at %s; its ID is %s\n", k.Nickname, modelName(k.Model), s.User().Name, acc.prof.Name, k.ID)
	const note = "That was an enrollment code, not a helpdesk recovery code: it enrolls a key but cannot revoke one. " +
		"Sign in with the new key (keydesk login) and revoke the lost keys with keydesk keys revoke ID."
	if len(o.lost) > 0 {
		return acc.exit(ExitOther, rpclient.ErrForbidden, "no key was revoked. %s", note)
	}
	fmt.Fprintln(e.stdout, note)
	return nil
}

// selectLost is the plan's SelectLost: the keys --lost names, which must
// all be usable keys of the account, or the ones chosen at the terminal.
// An error here aborts the recovery before anything is enrolled.
func (e *env) selectLost(ctx context.Context, acc *account, o *recoverOptions, usable []enroll.Key) ([]string, error) {
	if o.ask {
		return e.askLost(ctx, acc, usable)
	}
	for _, id := range o.lost {
		if !slices.ContainsFunc(usable, func(k enroll.Key) bool { return k.ID == id }) {
			fmt.Fprintf(e.stderr, "The usable keys of the account at %s:\n", acc.prof.Name)
			e.listUsable(usable)
			return nil, usageError("recover: --lost %s is not one of the account's usable keys (listed above); nothing was enrolled or revoked.%s", id, o.spentNote())
		}
	}
	return o.lost, nil
}

// listUsable prints the account's usable keys on stderr, numbered from
// 1, as keys list prints them.
func (e *env) listUsable(usable []enroll.Key) {
	for i, k := range usable {
		fmt.Fprintf(e.stderr, "%3d  %s\n", i+1, strings.Join(keyRow(keyJSON(k)), "  "))
	}
}

// askLost asks at the terminal which of the usable keys are lost, until
// the answer is a list of their numbers (empty: none).
func (e *env) askLost(ctx context.Context, acc *account, usable []enroll.Key) ([]string, error) {
	if len(usable) == 0 {
		return nil, nil
	}
	fmt.Fprintf(e.stderr, "The usable keys of the account at %s:\n", acc.prof.Name)
	e.listUsable(usable)
	in := bufio.NewReader(e.stdin)
	for {
		fmt.Fprintf(e.stderr, "Which keys are lost? Their numbers, comma-separated (empty: none): ")
		line, err := readLine(ctx, in)
		if err != nil {
			return nil, err
		}
		ids, problem := pickLost(line, usable)
		if problem == "" {
			return ids, nil
		}
		fmt.Fprintln(e.stderr, problem)
	}
}

// pickLost turns an answer of askLost into key IDs, or says what is
// wrong with it.
func pickLost(answer string, usable []enroll.Key) (ids []string, problem string) {
	for field := range strings.FieldsFuncSeq(answer, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		n, err := strconv.Atoi(field)
		if err != nil || n < 1 || n > len(usable) {
			return nil, fmt.Sprintf("%q is not a number from 1 to %d.", field, len(usable))
		}
		if id := usable[n-1].ID; !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids, ""
}

// readLine reads a line from in, or gives up when ctx ends (Ctrl-C); the
// read itself cannot be interrupted, and ends with the process.
func readLine(ctx context.Context, in *bufio.Reader) (string, error) {
	type read struct {
		line string
		err  error
	}
	done := make(chan read, 1)
	go func() {
		line, err := in.ReadString('\n')
		done <- read{line, err}
	}()
	select {
	case <-ctx.Done():
		return "", &platform.Error{Op: "read the answer", Kind: platform.ErrCancelled, RetriesLeft: -1, Err: ctx.Err()}
	case r := <-done:
		if r.err != nil && (r.err != io.EOF || r.line == "") {
			if r.err == io.EOF {
				return "", &ExitError{Code: ExitCancelled, Err: errors.New("no answer: nothing was enrolled or revoked")}
			}
			return "", fmt.Errorf("read the answer: %w", r.err)
		}
		return strings.TrimRight(r.line, "\r\n"), nil
	}
}

// printRecovered says on stdout what the recovery did: the replacement
// enrolled and the keys revoked; complete says whether it finished.
func (e *env) printRecovered(acc *account, sum *recovery.Summary, complete bool) {
	if sum == nil || sum.Enrolled == nil {
		return
	}
	k := sum.Enrolled
	fmt.Fprintf(e.stdout, "Enrolled %q (%s) in the account %s at %s; its ID is %s\n", k.Nickname, modelName(k.Model), sum.User.Name, acc.prof.Name, k.ID)
	for _, r := range sum.Revoked {
		fmt.Fprintf(e.stdout, "Revoked %q (ID %s): %s.\n", r.Nickname, r.ID, r.RevokeReason)
	}
	if !complete {
		return
	}
	if len(sum.Revoked) == 0 {
		fmt.Fprintln(e.stdout, "No key was revoked.")
	}
	fmt.Fprintf(e.stdout, "Recovered. Sign in with the new key: keydesk login --profile %s\n", acc.prof.Name)
}

// recoveryFail is fail for the errors of a recovery, whose session is
// not the profile's: one that ended must not cost the profile its stored
// session, and neither it nor a refusal is cured by keydesk login, which
// fail would advise.
func (a *account) recoveryFail(err error) error {
	var re *rpclient.Error
	if errors.As(err, &re) {
		switch re.Code {
		case "session_expired", "unauthenticated":
			return a.exit(ExitOther, err, "the recovery session at %s ended before the recovery was done: start again with keydesk recover", a.prof.Name)
		case "forbidden":
			return a.exit(ExitOther, err, "%s refused to %s: %s", a.prof.Name, re.Op, serverMessage(re))
		}
	}
	return a.fail(err)
}

// recoveryCodesJSON is the output of "keydesk recovery-codes --json".
type recoveryCodesJSON struct {
	Profile   string `json:"profile"`
	Remaining int    `json:"remaining"`
	Total     int    `json:"total"`
	// GeneratedAt is when the set was made; null when there is none.
	GeneratedAt *time.Time `json:"generatedAt"`
}

// recoveryCodes is "keydesk recovery-codes [status]|generate".
func (e *env) recoveryCodes(ctx context.Context, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "generate":
			return e.recoveryCodesGenerate(ctx, args[1:])
		case "status":
			args = args[1:]
		}
	}
	return e.recoveryCodesStatus(ctx, args)
}

// recoveryCodesStatus says how many of the signed-in account's recovery
// codes are left.
func (e *env) recoveryCodesStatus(ctx context.Context, args []string) error {
	f := e.newFlags("recovery-codes", true, false, false)
	name := profileFlag(f)
	if _, err := f.parse(args, 0); err != nil {
		return err
	}
	acc, done, err := e.openSession(ctx, *name, false)
	if err != nil {
		return err
	}
	defer done()
	st, err := acc.api.RecoveryCodesStatus(ctx)
	if err != nil {
		return acc.fail(err)
	}
	if f.json {
		return writeJSON(e.stdout, recoveryCodesJSON{Profile: acc.prof.Name, Remaining: st.Remaining, Total: st.Total, GeneratedAt: st.GeneratedAt})
	}
	if st.Total == 0 {
		fmt.Fprintf(e.stdout, "You have no recovery codes at %s. Make a set with keydesk recovery-codes generate: "+
			"each code lets you back into your account once, should you lose your keys.\n", acc.prof.Name)
		return nil
	}
	when := ""
	if st.GeneratedAt != nil {
		when = " (generated " + st.GeneratedAt.Local().Format("2006-01-02 15:04") + ")"
	}
	fmt.Fprintf(e.stdout, "%d of %d recovery codes left at %s%s.\n", st.Remaining, st.Total, acc.prof.Name, when)
	switch {
	case st.Remaining == 0:
		fmt.Fprintln(e.stdout, "None is left: make a new set with keydesk recovery-codes generate.")
	case st.Remaining <= 3:
		fmt.Fprintln(e.stdout, "Running low: make a new set with keydesk recovery-codes generate.")
	}
	return nil
}

// errCodesNotConfirmed is a new set of recovery codes not confirmed.
var errCodesNotConfirmed = &ExitError{Code: ExitOther, Err: errors.New("not confirmed; your recovery codes are unchanged")}

// recoveryCodesGenerate makes the signed-in account a new set of
// recovery codes, which replaces the old one: printed once on stdout, or
// written to a new file (--out) only its owner may read. Replacing
// unused codes is confirmed first, unless --yes: a set printed and put
// away would stop working unnoticed. The service wants a fresh sign-in
// for it; when it says so, the key --device names (or the one touched)
// signs in again, as keys revoke does.
func (e *env) recoveryCodesGenerate(ctx context.Context, args []string) error {
	f := e.newFlags("recovery-codes generate", false, true, true)
	name := profileFlag(f)
	out := f.String("out", "", "write the codes to this new file instead of standard output")
	yes := f.Bool("yes", false, "replace the unused codes without asking")
	if _, err := f.parse(args, 0); err != nil {
		return err
	}
	if f.pinStdin && e.stdin != nil {
		// The confirmation and the PINs come from standard input, one a
		// line: one buffer for both.
		e.stdin = bufio.NewReader(e.stdin)
	}
	acc, done, err := e.openSession(ctx, *name, f.pinStdin)
	if err != nil {
		return err
	}
	defer done()
	var file *os.File
	if *out != "" {
		// Created before the service is asked: a file that exists is
		// refused before the old codes are replaced.
		file, err = os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			return usageError("recovery-codes generate: %s exists: keydesk never overwrites a file; name a new one", *out)
		}
		if err != nil {
			return &ExitError{Code: ExitOther, Err: fmt.Errorf("recovery-codes generate: %w", err)}
		}
		// Until the codes are in it, the file is this command's to
		// remove: a failure leaves no empty or partial file behind.
		defer func() {
			if file != nil {
				file.Close()
				os.Remove(*out)
			}
		}()
	}
	me, err := acc.api.Me(ctx)
	if err != nil {
		return acc.fail(err)
	}
	st, err := acc.api.RecoveryCodesStatus(ctx)
	if err != nil {
		return acc.fail(err)
	}
	if st.Remaining > 0 && !*yes {
		fmt.Fprintf(e.stderr, "You have %d unused recovery codes at %s; a new set replaces them, and they stop working. Type 'yes' to go on: ",
			st.Remaining, acc.prof.Name)
		line := ""
		if e.stdin != nil {
			line, _ = bufio.NewReader(e.stdin).ReadString('\n')
		}
		if strings.TrimSpace(line) != "yes" {
			fmt.Fprintln(e.stderr)
			return errCodesNotConfirmed
		}
	}
	codes, err := acc.api.GenerateRecoveryCodes(ctx)
	if errors.Is(err, rpclient.ErrStepUpRequired) {
		fmt.Fprintln(e.stderr, "Making recovery codes needs a fresh sign-in: sign in with one of your keys.")
		err = e.withKey(ctx, f, func(key platform.Authenticator) error {
			_, err := acc.svc.SignIn(ctx, key, me.User.Name)
			return err
		})
		if err == nil {
			codes, err = acc.api.GenerateRecoveryCodes(ctx)
		}
	}
	if err != nil {
		return acc.fail(err)
	}
	text := codesText(me.User.Name, acc, codes)
	if *out == "" {
		fmt.Fprint(e.stdout, text)
		return nil
	}
	_, err = file.WriteString(text)
	if err == nil {
		err = file.Sync()
	}
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// The old set is gone: the new one must not be lost with the
		// file.
		fmt.Fprint(e.stdout, text)
		return &ExitError{Code: ExitOther, Err: fmt.Errorf("recovery-codes generate: could not write %s (%w); the codes are printed above instead, and the older set no longer works", *out, err)}
	}
	file = nil // written: kept
	fmt.Fprintf(e.stdout, "Wrote %d recovery codes for %s at %s to %s (readable by you only). Each code works once; the older set no longer works.\n",
		len(codes.Codes), me.User.Name, acc.prof.Name, *out)
	return nil
}

// codesText is a set of recovery codes as printed or written: a header
// naming the account, the service and the date, then the codes.
func codesText(user string, acc *account, codes *api.RecoveryCodes) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Keydesk recovery codes for the account %s at %s (%s), generated %s.\n",
		user, acc.prof.Name, acc.prof.Origin, codes.GeneratedAt.Local().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "Each code works once. Keep them apart from your keys, where only you can read them; an older set no longer works.\n")
	fmt.Fprintf(&b, "To use one: keydesk recover --code --user %s --profile %s --name NICKNAME\n\n", user, acc.prof.Name)
	for i, c := range codes.Codes {
		fmt.Fprintf(&b, "%3d. %s\n", i+1, c)
	}
	return b.String()
}
