package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/keydesk/keydesk/enroll"
	"github.com/keydesk/keydesk/enroll/profile"
	"github.com/keydesk/keydesk/enroll/rpclient"
	"github.com/keydesk/keydesk/enroll/webauthn"
	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/rp/api"
)

// account is what an account command (login, logout, keys) works with:
// the profile's relying party, reached through enroll.Service, with the
// session token kept in the system keyring between runs, since every
// keydesk command is a new process.
type account struct {
	prof   profile.Profile
	tokens profile.TokenStore
	svc    *enroll.Service
	// cfg is what svc was made with, and api its client: recover starts
	// a recovery session of its own from them (recovery.Recover), and
	// recovery-codes calls the service directly.
	cfg    enroll.Config
	api    *rpclient.Client
	stderr func(format string, args ...any)
}

// profileFlag adds --profile to f.
func profileFlag(f *flags) *string {
	return f.String("profile", "", "the profile to use (default: the current one; see keydesk profiles list)")
}

// openAccount opens the profile called name (or the current one) and its
// stored session. The keyring's absence is said on stderr, since it
// means a sign-in will not outlive this command. pinStdin and user
// configure the PIN prompt and the account chooser of the ceremonies;
// done closes the terminal the PIN prompt may have opened.
func (e *env) openAccount(ctx context.Context, name string, pinStdin bool, user string) (_ *account, done func(), err error) {
	set, err := loadProfiles()
	if err != nil {
		return nil, nil, err
	}
	p, err := pickProfile(set, name)
	if err != nil {
		return nil, nil, err
	}
	origin, err := p.ParseOrigin()
	if err != nil {
		return nil, nil, err // Load validated it: cannot happen
	}
	client, err := rpclient.New(rpclient.Config{BaseURL: p.APIURL})
	if err != nil {
		return nil, nil, &ExitError{Code: ExitUsage, Err: fmt.Errorf("profile %q: %w", p.Name, err)}
	}
	tokens, warning := profile.OpenTokenStore()
	if warning != "" {
		fmt.Fprintln(e.stderr, warning)
	}
	prompt, closePrompt := e.pinPrompt(ctx, pinStdin)
	cfg := enroll.Config{
		Profile: p.Name, Origin: origin, RPID: p.RPID, API: client, Tokens: tokens,
		UI: enroll.UI{
			// The steps are the command's to tell, on stdout, when it
			// is done; a touch is asked for by Run's progress, which the
			// flows pass their keys' progress on to.
			Event: func(enroll.Event) {},
			PIN:   prompt,
			ChooseAccount: func(as []platform.Assertion) (int, error) {
				return e.chooseAccount(as, user)
			},
		},
	}
	svc, err := enroll.New(cfg)
	if err != nil {
		closePrompt()
		return nil, nil, err
	}
	a := &account{prof: p, tokens: tokens, svc: svc, cfg: cfg, api: client,
		stderr: func(format string, args ...any) { fmt.Fprintf(e.stderr, format, args...) }}
	return a, closePrompt, nil
}

// explained is an error with a message for the person at the terminal
// that still matches what it explains (errors.Is, errors.As).
type explained struct {
	msg string
	err error
}

func (x *explained) Error() string { return x.msg }
func (x *explained) Unwrap() error { return x.err }

func (a *account) exit(code int, err error, format string, args ...any) error {
	return &ExitError{Code: code, Err: &explained{msg: fmt.Sprintf(format, args...), err: err}}
}

// openSession is openAccount for a command that needs a session (not
// signed in: exit 6, before any key is opened); done as openAccount's.
func (e *env) openSession(ctx context.Context, name string, pinStdin bool) (*account, func(), error) {
	acc, done, err := e.openAccount(ctx, name, pinStdin, "")
	if err != nil {
		return nil, nil, err
	}
	if err := acc.requireSession(); err != nil {
		done()
		return nil, nil, err
	}
	return acc, done, nil
}

// requireSession fails with ExitNotSignedIn before anything is asked of the
// service or a key when there is no session to use.
func (a *account) requireSession() error {
	if a.svc.SignedIn() {
		return nil
	}
	return a.exit(ExitNotSignedIn, enroll.ErrNotSignedIn,
		"not signed in to %s: sign in with keydesk login (with your security key) or keydesk login --code (with an enrollment code)", a.prof.Name)
}

// fail gives an error of an account command its exit code and a message
// that says what to do. Errors of the keys keep the codes of exitCode.
func (a *account) fail(err error) error {
	if err == nil {
		return nil
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return err
	}
	if errors.Is(err, enroll.ErrNotSignedIn) {
		return a.requireSession()
	}
	var re *rpclient.Error
	if !errors.As(err, &re) {
		var we *webauthn.Error
		if errors.As(err, &we) {
			// The options came from the service, not from the command
			// line: the service (or the profile's origin) is at fault.
			return a.exit(ExitOther, err, "Keydesk refuses what %s asked of the key (%v); check the profile's origin (keydesk profiles list)", a.prof.Origin, we)
		}
		return err
	}
	where := a.prof.APIURL
	switch {
	case errors.Is(re, rpclient.ErrNetwork):
		tries := ""
		if re.Attempts > 1 {
			tries = fmt.Sprintf(" (tried %d times)", re.Attempts)
		}
		return a.exit(ExitNetwork, err, "cannot reach the service of profile %s at %s: %s%s; check the network connection, and the profile's API address (keydesk profiles list)",
			a.prof.Name, where, networkReason(re), tries)
	case errors.Is(re, rpclient.ErrCertificate):
		return a.exit(ExitOther, err, "the certificate of %s is not trusted (%v): the connection may be intercepted; do not simply retry, ask your IT department", where, re.Err)
	case re.Code == "session_expired" || re.Code == "unauthenticated":
		// The token is dead: forget it, so that the next command says
		// "not signed in" without asking the service.
		if derr := a.tokens.Delete(a.prof.Name); derr != nil && !errors.Is(derr, profile.ErrNotFound) {
			a.stderr("could not delete the ended session's token: %v\n", derr)
		}
		return a.exit(ExitNotSignedIn, err, "your session with %s has ended: sign in again with keydesk login", a.prof.Name)
	case re.Code == "forbidden":
		// The key routes need a session from a sign-in with a key; the
		// server says only "forbidden".
		return a.exit(ExitNotSignedIn, err, "%s refused to %s: %s This session may only enroll keys (it came from an enrollment code): sign in with your key (keydesk login) first",
			a.prof.Name, re.Op, serverMessage(re))
	case errors.Is(re, rpclient.ErrRateLimited):
		wait := ""
		if re.RetryAfter > 0 {
			wait = fmt.Sprintf(" (wait %s)", re.RetryAfter.Round(time.Second))
		}
		return a.exit(ExitOther, err, "%s refused to %s: %s%s", a.prof.Name, re.Op, serverMessage(re), wait)
	case errors.Is(re, rpclient.ErrBadArgument):
		return a.exit(ExitUsage, err, "%s: %v", re.Op, re.Err)
	case errors.Is(re, rpclient.ErrBadRequest):
		// What the service refuses is an argument given: a nickname or
		// a reason too long.
		return a.exit(ExitUsage, err, "%s refused to %s: %s", a.prof.Name, re.Op, serverMessage(re))
	case errors.Is(re, rpclient.ErrBadResponse):
		return a.exit(ExitOther, err, "the answer of %s is not the Keydesk API's (%v); check the profile's API address (keydesk profiles list)", where, re.Err)
	case errors.Is(re, rpclient.ErrServer):
		return a.exit(ExitOther, err, "the service of %s failed (HTTP %d) to %s; try again later", a.prof.Name, re.Status, re.Op)
	case re.Status == 0:
		return err // cancelled (Ctrl-C): exit 5
	}
	return a.exit(ExitOther, err, "%s refused to %s: %s", a.prof.Name, re.Op, serverMessage(re))
}

// serverMessage is the service's explanation, or its status when it gave
// none.
func serverMessage(re *rpclient.Error) string {
	if re.Message != "" {
		return re.Message
	}
	return fmt.Sprintf("HTTP %d.", re.Status)
}

// networkReason says in a few words why the service could not be
// reached: "connection refused", "no answer in time"...
func networkReason(re *rpclient.Error) string {
	var dns *net.DNSError
	var op *net.OpError
	var sc *os.SyscallError
	switch {
	case errors.Is(re.Err, context.DeadlineExceeded):
		return "no answer in time"
	case errors.As(re.Err, &dns):
		return "cannot find the host " + dns.Name
	case errors.As(re.Err, &sc):
		return sc.Err.Error()
	case errors.As(re.Err, &op) && op.Err != nil:
		return op.Err.Error()
	case re.Err != nil:
		return re.Err.Error()
	}
	return "no connection"
}

// login is "keydesk login": a sign-in with a key, or with an enrollment
// code (--code), whose session the following commands use.
func (e *env) login(ctx context.Context, args []string) error {
	f := e.newFlags("login", false, true, true)
	name := profileFlag(f)
	user := f.String("user", "", "the account to sign in as")
	code := f.Bool("code", false, "sign in with an enrollment code, read from the terminal without echo")
	codeStdin := f.Bool("code-stdin", false, "read the enrollment code from a line of standard input (implies --code)")
	if _, err := f.parse(args, 0); err != nil {
		return err
	}
	withCode := *code || *codeStdin
	switch {
	case withCode && (f.device != "" || f.pinStdin):
		return usageError("login --code signs in without a key: --device and --pin-stdin do not apply")
	case withCode && *user == "":
		return usageError("login --code: --user NAME is required: an enrollment code is issued for one account")
	}
	acc, done, err := e.openAccount(ctx, *name, f.pinStdin, *user)
	if err != nil {
		return err
	}
	defer done()
	var sess *api.Session
	if withCode {
		// The code is read after the profile checked out, so that a
		// mistake there does not cost typing it.
		r, err := e.secretReader(ctx, secretCode, *codeStdin)
		if err != nil {
			return err
		}
		c, err := r.read("Enrollment code: ")
		r.close()
		if err != nil {
			return err
		}
		if c = strings.TrimSpace(c); c == "" {
			return usageError("login --code: the enrollment code is empty")
		}
		sess, err = acc.svc.SignInWithCode(ctx, *user, c)
		if err != nil {
			return acc.fail(err)
		}
	} else {
		err := e.withKey(ctx, f, func(key platform.Authenticator) error {
			var err error
			sess, err = acc.svc.SignIn(ctx, key, *user)
			return err
		})
		if errors.Is(err, platform.ErrNoCredentials) && *user != "" {
			return acc.exit(ExitOther, err, "this security key holds no key of %s for %s: it may be another key, or a revoked one", *user, acc.prof.Name)
		}
		if err != nil {
			return acc.fail(err)
		}
	}
	e.printSession(acc.prof, sess)
	return nil
}

// printSession says who is signed in where, what the session may do and
// until when; never its token.
func (e *env) printSession(p profile.Profile, s *api.Session) {
	until := s.ExpiresAt.Local().Format("2006-01-02 15:04 MST")
	switch s.Scope {
	case "full":
		fmt.Fprintf(e.stdout, "Signed in as %s to %s (%s). Scope: full; the session ends at %s.\n", s.User.Name, p.Name, p.Origin, until)
	case "register":
		fmt.Fprintf(e.stdout, "Signed in as %s to %s (%s) with an enrollment code. Scope: register: this session may only enroll keys "+
			"(keydesk keys enroll --name NICKNAME); it ends at %s.\n", s.User.Name, p.Name, p.Origin, until)
	default:
		fmt.Fprintf(e.stdout, "Signed in as %s to %s (%s). Scope: %s; the session ends at %s.\n", s.User.Name, p.Name, p.Origin, s.Scope, until)
	}
}

// logout is "keydesk logout": the session ends at the service and its
// token is deleted.
func (e *env) logout(ctx context.Context, args []string) error {
	f := e.newFlags("logout", false, false, false)
	name := profileFlag(f)
	if _, err := f.parse(args, 0); err != nil {
		return err
	}
	acc, done, err := e.openAccount(ctx, *name, false, "")
	if err != nil {
		return err
	}
	defer done()
	if !acc.svc.SignedIn() {
		fmt.Fprintf(e.stdout, "Not signed in to %s.\n", acc.prof.Name)
		return nil
	}
	// SignOut deletes the token even when the service cannot be told.
	if err := acc.svc.SignOut(ctx); err != nil {
		if errors.Is(err, rpclient.ErrNetwork) {
			var re *rpclient.Error
			errors.As(err, &re)
			return acc.exit(ExitNetwork, err, "signed out on this computer (the session token is deleted), but the service of %s could not be told "+
				"(cannot reach %s: %s); the session ends there when it expires", acc.prof.Name, acc.prof.APIURL, networkReason(re))
		}
		return acc.fail(err)
	}
	fmt.Fprintf(e.stdout, "Signed out of %s.\n", acc.prof.Name)
	return nil
}
