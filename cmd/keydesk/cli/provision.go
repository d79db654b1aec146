package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/keydesk/keydesk/enroll/provision"
	"github.com/keydesk/keydesk/enroll/rpclient"
)

// provisionPollInterval is how often provision looks for keys plugged in.
var provisionPollInterval = 250 * time.Millisecond

// provisionCmd is "keydesk provision": enroll keys on behalf of the users
// of a CSV file, one key after another as they are plugged in, with an
// admin's session of the profile.
func (e *env) provisionCmd(ctx context.Context, args []string) error {
	f := e.newFlags("provision", false, false, false)
	prof := profileFlag(f)
	csvPath := f.String("csv", "", "the users: a CSV file of user names, each with an optional key nickname")
	out := f.String("out", "", "the results directory: journal, results.csv and the PIN pages (created; an earlier run there is resumed)")
	batch := f.String("batch", "", "the batch's name at the service (default: the results directory's name)")
	nickname := f.String("nickname", "", "the nickname of keys whose user has none in the CSV")
	pinLength := f.Int("pin-length", 8, "the length of the random PINs")
	alphabet := f.String("pin-alphabet", "digits", "the PINs' characters: digits or alphanumeric")
	minPIN := f.Int("min-pin-length", 6, "the minimum length of the PIN each user chooses on first use")
	ep := f.Bool("enterprise-attestation", false, "enable enterprise attestation on each key")
	yes := f.Bool("yes", false, "reset keys that are in use without asking")
	if _, err := f.parse(args, 0); err != nil {
		return err
	}
	if *csvPath == "" || *out == "" {
		return usageError("provision: --csv and --out are required")
	}
	abc, err := provision.ParseAlphabet(*alphabet)
	if err != nil {
		return usageError("provision: %v", err)
	}
	users, err := readUsersFile(*csvPath)
	if err != nil {
		return &ExitError{Code: ExitUsage, Err: err}
	}
	dir, err := filepath.Abs(*out)
	if err != nil {
		return &ExitError{Code: ExitUsage, Err: err}
	}
	if *batch == "" {
		*batch = filepath.Base(dir)
	}
	acc, done, err := e.openSession(ctx, *prof, false)
	if err != nil {
		return err
	}
	defer done()
	origin, _ := acc.prof.ParseOrigin()
	answers := &lineReader{r: bufio.NewReader(e.stdin)}
	keys, present := provision.WatchKeys(ctx, e.enum, provisionPollInterval)
	if present > 0 {
		fmt.Fprintf(e.stderr, "%d keys are plugged in already: they are left alone. To provision one, unplug it and plug it back in.\n", present)
	}
	cfg := provision.BatchConfig{
		Provision: provision.Config{
			API: acc.api, Origin: origin, RPID: acc.prof.RPID, Batch: *batch, Nickname: *nickname,
			PINLength: *pinLength, PINAlphabet: abc, MinPINLength: *minPIN, EnterpriseAttestation: *ep,
			ConfirmReset: func(ctx context.Context, k provision.KeyFacts) (bool, error) {
				if *yes {
					return true, nil
				}
				why := "has a PIN"
				if k.Credentials > 0 {
					why = fmt.Sprintf("holds %d credentials", k.Credentials)
				}
				fmt.Fprintf(e.stderr, "This key (%s) %s: someone used it. Resetting erases it, and every later key of this run that is in use.\nType 'reset' to reset such keys, anything else to refuse them: ", orUnknown(k.Model), why)
				return answers.line() == "reset", nil
			},
			Progress: func(p provision.Progress) {
				fmt.Fprintf(e.stderr, "  %s %s\n", progressBar(p.Index, p.Total), p.Message)
			},
		},
		Users: users, Dir: dir, Keys: keys,
		Operator: provision.Operator{
			Say: func(s string) { fmt.Fprintln(e.stderr, s) },
			WrongKey: func(ctx context.Context, user string) (bool, error) {
				fmt.Fprintf(e.stderr, "This is not the key %s's provisioning started on. Type 'over' to start %s over on this key (the first key's enrollment is revoked), or press Enter to wait for the first key: ", user, user)
				return answers.line() == "over", nil
			},
			UserDone: func(r provision.Result) {
				if r.Status == provision.StatusEnrolled {
					fmt.Fprintf(e.stdout, "%s\tenrolled\t%s\t%s\n", r.User, orUnknown(r.Model), r.CredentialID)
				} else {
					fmt.Fprintf(e.stdout, "%s\t%s\t%s\n", r.User, r.Status, r.Error)
				}
			},
		},
	}
	fmt.Fprintf(e.stderr, "Provisioning %d users in batch %q at %s; results in %s.\n", len(users), *batch, acc.prof.Origin, dir)
	sum, err := provision.RunBatch(ctx, cfg)
	if sum != nil {
		fmt.Fprintf(e.stdout, "%d enrolled, %d failed, %d pending; %d interrupted keys revoked.\nResults: %s\nPIN pages: %s (print them, hand them over, then delete the files)\n",
			sum.Enrolled, sum.Failed, sum.Pending, sum.Revoked, filepath.Join(dir, provision.ResultsFile), filepath.Join(dir, provision.HandoverDir))
	}
	switch {
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(e.stderr, "Stopped. Run the same command again to resume: nobody is enrolled twice.")
		return &ExitError{Code: ExitCancelled, Err: err}
	case errors.Is(err, rpclient.ErrForbidden):
		return acc.exit(ExitOther, err, "%s refused: provisioning keys for others needs an admin's session; sign in as an admin with keydesk login (%v)", acc.prof.Name, err)
	case err != nil:
		return acc.fail(err)
	case sum.Failed > 0 || sum.Pending > 0:
		return &ExitError{Code: ExitOther, Err: fmt.Errorf("provision: %d users not enrolled (see %s)", sum.Failed+sum.Pending, filepath.Join(dir, provision.ResultsFile))}
	}
	return nil
}

// readUsersFile reads the batch's users from the CSV file at path.
func readUsersFile(path string) ([]provision.User, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("provision: %w", err)
	}
	defer f.Close()
	return provision.ReadUsers(f)
}

// progressBar draws step i of n as [###----].
func progressBar(i, n int) string {
	if n <= 0 {
		return ""
	}
	i = min(max(i, 0), n)
	return "[" + strings.Repeat("#", i) + strings.Repeat("-", n-i) + fmt.Sprintf("] %d/%d", i, n)
}

func orUnknown(model string) string {
	if model == "" {
		return "unknown model"
	}
	return model
}

// lineReader reads the operator's answers, one line each; at the end of
// the input every answer is "".
type lineReader struct {
	mu sync.Mutex
	r  *bufio.Reader
}

func (l *lineReader) line() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.r == nil {
		return ""
	}
	s, _ := l.r.ReadString('\n')
	return strings.TrimSpace(s)
}
