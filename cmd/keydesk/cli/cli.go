// Package cli holds the keydesk command tree, so that main stays thin and
// the commands can be tested in-process. README.md describes the commands,
// the exit codes and the JSON output.
package cli

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/libfido2"
)

// Exit codes of the keydesk command.
const (
	ExitOK        = 0 // success
	ExitOther     = 1 // any other error (also: reset not confirmed)
	ExitUsage     = 2 // bad command line (unknown command or flag, bad --device, bad argument)
	ExitNoKey     = 3 // no security key found
	ExitPIN       = 4 // wrong PIN or another PIN problem (blocked, too short, not set, needed, new PINs differ)
	ExitCancelled = 5 // cancelled, timed out, or refused on the key
	// ExitNotSignedIn: an account command without a usable session (none,
	// ended, or one from an enrollment code doing more than enrolling):
	// sign in (again) with keydesk login. Scripts branch on it to sign in.
	ExitNotSignedIn = 6
	// ExitNetwork: the relying party's service could not be reached (no
	// connection, the connection cut, no answer in time): unlike a
	// refusal, trying again later may help.
	ExitNetwork = 7
)

// Usage is the command's help text.
const Usage = `usage: keydesk                                 open the desktop app
       keydesk <command> [flags] [arguments]

commands:
  devices [--json]                       list connected security keys (the default
                                         when only flags are given)
  info [--device D] [--json]             show everything a key reports about itself
  pin set [--device D] [--pin-stdin]     set the key's first PIN
  pin change [--device D] [--pin-stdin]  change the key's PIN
  creds list [--device D] [--pin-stdin] [--json]
                                         list the discoverable credentials (passkeys)
  creds delete [--device D] [--pin-stdin] ID
                                         delete the credential with base64url ID
  creds update [--device D] [--pin-stdin] [--name NAME]
               [--display-name NAME] ID
                                         change the user name and/or display name
                                         of the credential with base64url ID; the
                                         name not given stays, "" removes it
  fingerprints list [--device D] [--pin-stdin] [--json]
                                         list the enrolled fingerprints
  fingerprints add [--device D] [--pin-stdin] [--name NAME]
                                         enroll a fingerprint; prints its base64url ID
  fingerprints rename [--device D] [--pin-stdin] ID NAME
                                         rename the fingerprint with base64url ID
  fingerprints delete [--device D] [--pin-stdin] ID
                                         delete the fingerprint with base64url ID
  config min-pin-length [--device D] [--pin-stdin] [--rp-id ID ...] N
                                         raise the minimum PIN length to N; each
                                         --rp-id may read it
  config force-pin-change [--device D] [--pin-stdin]
                                         require a PIN change before the next use
  config always-uv [--device D] [--pin-stdin]
                                         toggle alwaysUv and print the new state
  config enterprise-attestation [--device D] [--pin-stdin]
                                         enable enterprise attestation
                                         (config asks for a PIN only if one is set)
  reset [--device D] [--yes]             erase the key; without --yes, type 'erase'
                                         on standard input to confirm
  webauthn create --origin ORIGIN --options FILE [--device D] [--pin-stdin]
                                         navigator.credentials.create() from a
                                         terminal: FILE (or - for standard input)
                                         holds PublicKeyCredentialCreationOptions
                                         JSON as a server sends it; prints the
                                         PublicKeyCredential JSON to send back
  webauthn get --origin ORIGIN --options FILE [--device D] [--pin-stdin]
               [--user NAME]             navigator.credentials.get() likewise;
                                         --user picks among several accounts

account commands (at the relying party of a profile; see below):
  profiles list [--json]                 list the profiles; the current one is
                                         marked
  profiles add NAME --origin ORIGIN [--rp-id ID] [--api-url URL]
                                         add a profile (the first becomes current)
  profiles remove NAME                   remove a profile and its session token
  profiles use NAME                      make NAME the current profile
  login [--profile P] [--user NAME] [--device D] [--pin-stdin]
                                         sign in with a security key: --user
                                         names the account, else the key offers
                                         its accounts (--user picks among several)
  login --code [--code-stdin] --user NAME [--profile P]
                                         sign in with an enrollment code (a
                                         session that may only enroll keys)
  logout [--profile P]                   end the session and delete its token
  keys list [--profile P] [--json]       the account's keys; marks the plugged-in
                                         ones (asked silently, no touch)
  keys enroll --name NICKNAME [--profile P] [--device D] [--pin-stdin]
                                         enroll a key in the account
  keys rename [--profile P] ID NAME      rename the account's key with ID
  keys revoke [--profile P] [--reason R] [--device D] [--pin-stdin] ID
                                         revoke a lost key (reason: lost); if the
                                         session is older than the service allows,
                                         sign in again first with another key
  recover --user NAME --name NICKNAME [--profile P] [--device D] [--pin-stdin]
          [--lost ID,...|none] [--reason R] [--invert-qr]
                                         locked out: recover the account with your
                                         phone (scan the QR code it prints, pick
                                         the number shown), enroll the key --device
                                         names as a replacement, and revoke the
                                         lost keys (asked on the terminal without
                                         --lost); no sign-in needed
  recover --code [--code-stdin] --user NAME --name NICKNAME ...
                                         the same with one of your recovery codes
  recover --grant [--grant-stdin] --user NAME --name NICKNAME ...
                                         the same with a recovery code from the
                                         helpdesk
  recovery-codes [--profile P] [--json]  how many of your recovery codes are left
  recovery-codes generate [--profile P] [--out FILE] [--yes] [--device D]
                          [--pin-stdin]  make a new set of ten (it replaces the
                                         old one: without --yes, type 'yes' to
                                         confirm); printed once, or written to a
                                         new FILE only you may read
  provision --csv USERS.csv --out DIR [--profile P] [--batch NAME]
            [--nickname N] [--pin-length 8] [--pin-alphabet digits|alphanumeric]
            [--min-pin-length 6] [--enterprise-attestation] [--yes]
                                         (admins) enroll a key for each user of
                                         the CSV (name[,nickname]) as keys are
                                         plugged in, one after another: a random
                                         PIN, changed on first use, printed on
                                         one PDF page per user in DIR/pins;
                                         DIR/results.csv has no PIN; stopped, the
                                         same command resumes (DIR/journal.jsonl)
  help                                   show this text

flags:
  --device D    a device path, or an index into the order of "keydesk devices";
                default: the only key, or, with several, the one you touch
  --json        print JSON (the schemas are in cmd/keydesk/cli/README.md)
  --yes         reset, or replace unused recovery codes, without asking for
                confirmation
  --pin-stdin   read PINs from standard input, one a line, instead of from the
                terminal without echo; PINs are never taken from the command line
  --profile P   the profile (relying party) of an account command; default:
                the current one (keydesk profiles use)
  --code        login: ask for the enrollment code on the terminal, without echo
  --code-stdin  login: read the enrollment code from a line of standard input
                (implies --code); recover: likewise the recovery code; codes
                are never taken from the command line
  --grant-stdin recover: read the helpdesk's recovery code from a line of
                standard input (implies --grant)
  --lost L      recover: the lost keys to revoke, their IDs (keydesk keys list)
                comma-separated, or none; required when standard input is not
                a terminal or carries a PIN or code

exit codes:
  0  success
  1  other error (also: reset not confirmed; nothing was erased)
  2  usage error (unknown command or flag, --device out of range, bad argument;
     webauthn: a bad or insecure origin, an RP ID the origin may not use, or
     options the client refuses)
  3  no security key found
  4  wrong PIN or another PIN problem (blocked, too short, not set, required,
     the two new PINs differ)
  5  cancelled, timed out, or refused on the key (also: a recovery request
     nobody approved in time)
  6  not signed in, the session ended, or a session from an enrollment code
     used for more than enrolling: sign in with keydesk login
  7  the service could not be reached (network); trying again may help

Account commands keep a profile's session token in the system keyring, so
that it outlives the command; without a keyring they say so, and the
session ends with the command. Profiles live in profiles.json next to the
configuration file ($KEYDESK_CONFIG). A refusal by the service is exit 1,
an argument it refuses (a nickname too long) exit 2.
`

// MayWait reports whether the command args names may wait for the user
// (a touch, a PIN, a confirmation), so that Ctrl-C must cancel it cleanly
// rather than end the process. Listing keys, reading their information
// and editing profiles never wait.
func MayWait(args []string) bool {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return false // devices
	}
	switch args[0] {
	case "devices", "info", "help", "profiles":
		return false
	}
	return true
}

// ExitError is an error with the exit code keydesk ends with. Its message
// is the command's own explanation when it gave one, else the
// plain-language one of a *platform.Error when there is one.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	var x *explained
	if errors.As(e.Err, &x) {
		return x.msg
	}
	var pe *platform.Error
	if errors.As(e.Err, &pe) {
		return pe.Message()
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// ErrUsageShown marks usage errors whose explanation was already printed
// (by the flag package), so main need not repeat it.
var ErrUsageShown = errors.New("usage error")

func usageError(format string, args ...any) error {
	return &ExitError{Code: ExitUsage, Err: fmt.Errorf(format, args...)}
}

// exitCode maps an error to keydesk's exit code.
func exitCode(err error) int {
	var ee *ExitError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ee):
		return ee.Code
	case errors.Is(err, platform.ErrNoDevice):
		return ExitNoKey
	case errors.Is(err, platform.ErrPINInvalid), errors.Is(err, platform.ErrPINBlocked),
		errors.Is(err, platform.ErrPINAuthBlocked), errors.Is(err, platform.ErrPINPolicy),
		errors.Is(err, platform.ErrPINNotSet), errors.Is(err, platform.ErrPINRequired):
		return ExitPIN
	case errors.Is(err, platform.ErrCancelled), errors.Is(err, platform.ErrTimeout),
		errors.Is(err, platform.ErrOperationDenied), errors.Is(err, context.Canceled),
		errors.Is(err, context.DeadlineExceeded):
		return ExitCancelled
	}
	return ExitOther
}

// withCode wraps err in an *ExitError with its exit code.
func withCode(err error) error {
	if err == nil {
		return nil
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		if ee.Code == ExitOK { // -h: the usage was printed
			return nil
		}
		return err
	}
	return &ExitError{Code: exitCode(err), Err: err}
}

// env is what every command runs with.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	enum   platform.Enumerator
}

// Run runs the keydesk command line. stdin supplies PINs with --pin-stdin
// (or, when it is a terminal, PINs typed without echo). A failure is an
// *ExitError carrying the exit code (see Usage).
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	extra, err := platform.ExtraDevices()
	if err != nil {
		return &ExitError{Code: 1, Err: err}
	}
	e := &env{
		stdin: stdin, stdout: stdout, stderr: &lockedWriter{w: stderr},
		enum: libfido2.New(libfido2.Config{ExtraDevices: extra}),
	}
	// Operations that wait for the user say so; only a reset asks for
	// the key to be plugged in again.
	ctx = platform.WithProgress(ctx, func(ev platform.ProgressEvent) {
		switch ev.Stage {
		case platform.StageTouch:
			fmt.Fprintln(e.stderr, "Touch your security key…")
		case platform.StageReinsert:
			fmt.Fprintln(e.stderr, "Unplug the key and plug it back in…")
		}
	})
	cmd, rest := "devices", args
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, rest = args[0], args[1:]
	}
	switch cmd {
	case "devices":
		err = e.devices(ctx, rest)
	case "info":
		err = e.info(ctx, rest)
	case "pin":
		err = e.pin(ctx, rest)
	case "creds":
		err = e.creds(ctx, rest)
	case "fingerprints":
		err = e.fingerprints(ctx, rest)
	case "config":
		err = e.config(ctx, rest)
	case "reset":
		err = e.reset(ctx, rest)
	case "webauthn":
		err = e.webauthnCmd(ctx, rest)
	case "profiles":
		err = e.profiles(rest)
	case "login":
		err = e.login(ctx, rest)
	case "logout":
		err = e.logout(ctx, rest)
	case "keys":
		err = e.keys(ctx, rest)
	case "recover":
		err = e.recover(ctx, rest)
	case "recovery-codes":
		err = e.recoveryCodes(ctx, rest)
	case "provision":
		err = e.provisionCmd(ctx, rest)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, Usage)
		return nil
	default:
		fmt.Fprint(e.stderr, Usage)
		return usageError("unknown command %q", cmd)
	}
	return withCode(err)
}

// sub picks a subcommand of pin or creds.
func (e *env) sub(name string, args []string, subs map[string]func([]string) error) error {
	if len(args) == 0 || subs[args[0]] == nil {
		fmt.Fprint(e.stderr, Usage)
		if len(args) == 0 {
			return usageError("%s: missing subcommand", name)
		}
		return usageError("%s: unknown subcommand %q", name, args[0])
	}
	return subs[args[0]](args[1:])
}

// flags is a command's flag set with the common flags.
type flags struct {
	*flag.FlagSet
	json     bool
	device   string
	pinStdin bool
}

func (e *env) newFlags(name string, json, device, pinStdin bool) *flags {
	f := &flags{FlagSet: flag.NewFlagSet("keydesk "+name, flag.ContinueOnError)}
	f.SetOutput(e.stderr)
	f.Usage = func() { fmt.Fprint(e.stderr, Usage) }
	if json {
		f.BoolVar(&f.json, "json", false, "print JSON")
	}
	if device {
		f.StringVar(&f.device, "device", "", "device path or index")
	}
	if pinStdin {
		f.BoolVar(&f.pinStdin, "pin-stdin", false, "read PINs from standard input, one a line")
	}
	return f
}

// parse parses flags and positional arguments in any order ("--" ends the
// flags) and checks the number of positional arguments.
func (f *flags) parse(args []string, positional int) ([]string, error) {
	var pos []string
	for {
		if err := f.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, &ExitError{Code: ExitOK, Err: ErrUsageShown}
			}
			return nil, &ExitError{Code: ExitUsage, Err: fmt.Errorf("%w: %v", ErrUsageShown, err)}
		}
		rest := f.Args()
		if len(rest) == 0 {
			break
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if len(pos) != positional {
		f.Usage()
		return nil, usageError("%s: want %d argument(s), got %d", f.Name(), positional, len(pos))
	}
	return pos, nil
}

// parseWithID is parse for a command whose first argument is a base64url
// ID (padding optional), as the list command listCmd prints it; what
// names what the ID identifies, for the usage error.
func (f *flags) parseWithID(args []string, positional int, what, listCmd string) ([]byte, []string, error) {
	pos, err := f.parse(args, positional)
	if err != nil {
		return nil, nil, err
	}
	id, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(pos[0], "="))
	if err != nil || len(id) == 0 {
		return nil, nil, usageError("%s ID %q is not base64url (as keydesk %s prints it)", what, pos[0], listCmd)
	}
	return id, pos, nil
}

// openKey opens the key --device names: a path, or an index into the
// order of Devices; by default the only key, or the one touched when
// there are several.
func (e *env) openKey(ctx context.Context, device string) (platform.Authenticator, error) {
	if _, err := strconv.Atoi(device); device != "" && err != nil {
		// A path needs no enumeration, which costs a scan of udev's
		// device list on every command.
		return e.enum.Open(ctx, platform.Device{Path: device, Transport: platform.TransportOf(device)})
	}
	devs, err := e.enum.Devices(ctx)
	if err != nil {
		return nil, err
	}
	if device != "" {
		d, err := pickDevice(devs, device)
		if err != nil {
			return nil, err
		}
		return e.enum.Open(ctx, d)
	}
	if len(devs) == 0 {
		return nil, &platform.Error{Op: "find a security key", Kind: platform.ErrNoDevice, RetriesLeft: -1}
	}
	var keys []platform.Authenticator
	for _, d := range devs {
		k, err := e.enum.Open(ctx, d)
		if err != nil {
			closeAll(keys)
			return nil, err
		}
		keys = append(keys, k)
	}
	if len(keys) == 1 {
		return keys[0], nil
	}
	fmt.Fprintln(e.stderr, "Touch the key you want to use")
	// Every key asks for a touch at once: one prompt is enough.
	chosen, err := platform.SelectAmong(platform.WithProgress(ctx, nil), keys)
	for _, k := range keys {
		if k != chosen {
			k.Close()
		}
	}
	return chosen, err
}

// withKey opens the key --device names, runs do with it and closes it.
func (e *env) withKey(ctx context.Context, f *flags, do func(platform.Authenticator) error) error {
	key, err := e.openKey(ctx, f.device)
	if err != nil {
		return err
	}
	defer key.Close()
	return do(key)
}

// withKeyAndPIN is withKey for an operation that needs the PIN, which is
// read once the key is open.
func (e *env) withKeyAndPIN(ctx context.Context, f *flags, do func(key platform.Authenticator, pin string) error) error {
	return e.withKey(ctx, f, func(key platform.Authenticator) error {
		pin, err := e.readPIN(ctx, f.pinStdin)
		if err != nil {
			return err
		}
		return do(key, pin)
	})
}

// done prints the confirmation msg on stdout when err is nil, and
// returns err.
func (e *env) done(err error, msg string) error {
	if err == nil {
		fmt.Fprintln(e.stdout, msg)
	}
	return err
}

// listPIN runs a list command that needs the PIN (no arguments; --device,
// --pin-stdin, --json). list returns the JSON output and its text rows:
// printed as JSON with --json, else one tab-separated line per row, or
// the line empty when there are no rows.
func (e *env) listPIN(ctx context.Context, name string, args []string, empty string,
	list func(key platform.Authenticator, pin string) (out any, rows [][]string, err error)) error {
	f := e.newFlags(name, true, true, true)
	if _, err := f.parse(args, 0); err != nil {
		return err
	}
	return e.withKeyAndPIN(ctx, f, func(key platform.Authenticator, pin string) error {
		out, rows, err := list(key, pin)
		if err != nil {
			return err
		}
		if f.json {
			return writeJSON(e.stdout, out)
		}
		if len(rows) == 0 {
			fmt.Fprintln(e.stdout, empty)
		}
		for _, r := range rows {
			fmt.Fprintln(e.stdout, strings.Join(r, "\t"))
		}
		return nil
	})
}

func closeAll(keys []platform.Authenticator) {
	for _, k := range keys {
		k.Close()
	}
}

// pickDevice resolves --device among devs: an index, or a path (a path
// not listed is opened as given).
func pickDevice(devs []platform.Device, device string) (platform.Device, error) {
	if i, err := strconv.Atoi(device); err == nil {
		if len(devs) == 0 {
			return platform.Device{}, &platform.Error{Op: "find a security key", Kind: platform.ErrNoDevice, RetriesLeft: -1}
		}
		if i < 0 || i >= len(devs) {
			return platform.Device{}, usageError("--device %d: out of range; there are %d key(s), numbered from 0 (see keydesk devices)", i, len(devs))
		}
		return devs[i], nil
	}
	for _, d := range devs {
		if d.Path == device {
			return d, nil
		}
	}
	return platform.Device{Path: device, Transport: platform.TransportOf(device)}, nil
}

// lockedWriter serialises writes from progress callbacks.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
