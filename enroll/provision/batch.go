package provision

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gofrs/flock"

	"github.com/keydesk/keydesk/enroll/provision/handover"
	"github.com/keydesk/keydesk/enroll/provision/journal"
	"github.com/keydesk/keydesk/enroll/rpclient"
	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/atomicfile"
	"github.com/keydesk/keydesk/rp/api"
)

// The files of a batch's results directory.
const (
	JournalFile = "journal.jsonl"
	ResultsFile = "results.csv"
	// HandoverDir holds one PIN page per user (mode 0700).
	HandoverDir = "pins"
)

// A key that does not answer is asked lostTries more times, lostWait
// apart, before it counts as removed.
const (
	lostTries = 3
	lostWait  = 150 * time.Millisecond
)

// busyWait is how long a key another program has for a moment is left
// alone before it is asked again.
const busyWait = 200 * time.Millisecond

// lockFile keeps a second run off a results directory.
const lockFile = ".lock"

// ErrBatchRunning: another run works in the results directory.
var ErrBatchRunning = errors.New("another keydesk provision is running in this directory")

// interruptedReason is the revocation reason of a key whose
// provisioning was stopped before it was handed over.
const interruptedReason = "provisioning interrupted"

// KeySource yields the keys the operator plugs in, one at a time.
type KeySource interface {
	// Next waits for the next key plugged in and opens it.
	Next(ctx context.Context) (platform.Authenticator, error)
}

// Operator is how a batch reaches the person plugging keys in. Every
// field may be nil.
type Operator struct {
	// Say tells the operator what is happening or what to do next, in
	// a sentence. It must not block.
	Say func(string)
	// WrongKey asks, when a key other than the one user's provisioning
	// started on is plugged in, whether to start user over on it (true:
	// the first key's enrollment is revoked and reported) or to wait for
	// the first key (false). nil waits.
	WrongKey func(ctx context.Context, user string) (bool, error)
	// UserDone receives each user's result as it is known.
	UserDone func(Result)
}

// BatchConfig is one run of a batch.
type BatchConfig struct {
	// Provision configures each key's provisioning; its Batch names the
	// run, and its API must be an admin's session.
	Provision Config
	// Users are provisioned in order.
	Users []User
	// Dir receives the journal, the results and the PIN pages. A
	// directory holding a journal of the same batch resumes it.
	Dir string
	// Keys yields the keys plugged in.
	Keys KeySource
	// Operator reaches the person at the desk.
	Operator Operator
	// Retry is the first wait before asking a service that did not
	// answer again (default 2 s), doubling up to 30 s.
	Retry time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Summary is what a run did.
type Summary struct {
	Results []Result
	// Enrolled, Failed and Pending count the results by status.
	Enrolled, Failed, Pending int
	// Revoked counts the keys of interrupted attempts revoked at the
	// service.
	Revoked int
}

// batch is a run in progress.
type batch struct {
	cfg     BatchConfig
	p       *Provisioner
	j       *journal.Journal
	results map[string]*Result
	revoked int
	// key is the key plugged in and not yet used up, nil when the next
	// one must be waited for.
	key platform.Authenticator
}

// RunBatch provisions a key for each user not already done in cfg.Dir's
// journal, one key after another, and writes the results. Users an
// earlier run left half-way (stopped, killed) first have that attempt's
// key revoked at the service, so that nobody ends with a key whose PIN
// nobody has. The run stops at the first error that is not one key's or
// one user's (ctx ended, the journal cannot be written), with the results
// so far written.
func RunBatch(ctx context.Context, cfg BatchConfig) (*Summary, error) {
	if cfg.Provision.Batch == "" {
		return nil, errors.New("provision: a batch needs a name")
	}
	if cfg.Keys == nil || len(cfg.Users) == 0 {
		return nil, errors.New("provision: a batch needs users and a key source")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Retry <= 0 {
		cfg.Retry = 2 * time.Second
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, HandoverDir), 0o700); err != nil {
		return nil, fmt.Errorf("provision: results directory: %w", err)
	}
	// One run per directory: two would both take the journal's pending
	// users and could enroll one twice. The lock goes with the process,
	// however it ends.
	lock := flock.New(filepath.Join(cfg.Dir, lockFile), flock.SetPermissions(0o600))
	if ok, err := lock.TryLock(); err != nil {
		return nil, fmt.Errorf("provision: lock %s: %w", cfg.Dir, err)
	} else if !ok {
		return nil, fmt.Errorf("provision: %s: %w", cfg.Dir, ErrBatchRunning)
	}
	defer lock.Unlock()
	p, err := New(ctx, cfg.Provision)
	if err != nil {
		return nil, err
	}
	j, _, records, err := journal.Open(filepath.Join(cfg.Dir, JournalFile),
		journal.Header{Batch: cfg.Provision.Batch, Service: cfg.Provision.Origin.String(), Created: cfg.Now().UTC()})
	if err != nil {
		return nil, fmt.Errorf("provision: %w", err)
	}
	defer j.Close()
	b := &batch{cfg: cfg, p: p, j: j, results: map[string]*Result{}}
	for _, u := range cfg.Users {
		b.results[u.Name] = &Result{User: u.Name, Nickname: u.Nickname, Status: StatusPending}
	}
	runErr := b.run(ctx, journal.Last(records), records)
	sum := b.summary()
	if err := b.writeResults(sum.Results); err != nil && runErr == nil {
		runErr = err
	}
	return sum, runErr
}

func (b *batch) say(format string, args ...any) {
	if b.cfg.Operator.Say != nil {
		b.cfg.Operator.Say(fmt.Sprintf(format, args...))
	}
}

func (b *batch) record(r journal.Record) error {
	r.Time = b.cfg.Now().UTC()
	if err := b.j.Append(r); err != nil {
		return fmt.Errorf("%w: %w", errJournal, err)
	}
	return nil
}

// run provisions the users the journal does not show done.
func (b *batch) run(ctx context.Context, last map[string]journal.Record, records []journal.Record) error {
	for _, rec := range records {
		if r := b.results[rec.User]; r != nil {
			switch rec.Event {
			case journal.Done:
				*r = Result{User: rec.User, Nickname: rec.Nickname, Model: rec.Model, AAGUID: rec.AAGUID,
					CredentialID: rec.CredentialID, Status: StatusEnrolled, Handover: handoverPath(rec.User), Error: r.Error}
			case journal.Revoked:
				r.Error = joinNote(r.Error, fmt.Sprintf("an interrupted attempt's key %s was revoked", rec.CredentialID))
			}
		}
	}
	for i, u := range b.cfg.Users {
		if last[u.Name].Event == journal.Done {
			continue
		}
		if ev := last[u.Name].Event; ev == journal.Started || ev == journal.Enrolled {
			if err := b.revokeInterrupted(ctx, u); err != nil {
				return err
			}
		}
		if err := b.user(ctx, u, i+1); err != nil {
			return err
		}
	}
	return nil
}

// revokeInterrupted revokes the keys an interrupted attempt left for u at
// the service: its PIN went with the stopped process.
func (b *batch) revokeInterrupted(ctx context.Context, u User) error {
	api := b.cfg.Provision.API
	for {
		keys, err := api.UserKeys(ctx, u.Name)
		if err == nil {
			for _, k := range keys {
				if k.Batch != b.cfg.Provision.Batch || k.RevokedAt != nil {
					continue
				}
				if _, err = api.RevokeUserKey(ctx, u.Name, k.ID, interruptedReason); err != nil {
					break
				}
				b.revoked++
				b.say("Revoked the key an interrupted attempt enrolled for %s (%s): its PIN was lost with that run.", u.Name, k.ID)
				r := b.results[u.Name]
				r.Error = joinNote(r.Error, fmt.Sprintf("an interrupted attempt's key %s was revoked", k.ID))
				if err = b.record(journal.Record{User: u.Name, Event: journal.Revoked, CredentialID: k.ID, AAGUID: k.AAGUID, Model: k.Model}); err != nil {
					return err
				}
			}
		}
		if err == nil {
			return nil
		}
		if !b.serviceDown(err) {
			return fmt.Errorf("provision: revoke %s's interrupted key: %w", u.Name, err)
		}
		if err := b.waitService(ctx, err); err != nil {
			return err
		}
	}
}

// user provisions one user's key: n is their place in the batch.
func (b *batch) user(ctx context.Context, u User, n int) error {
	if err := b.record(journal.Record{User: u.Name, Event: journal.Started, Nickname: u.Nickname}); err != nil {
		return err
	}
	job := b.newJob(u)
	defer func() { job.Wipe() }()
	retry := b.cfg.Retry
	lost := 0 // how often in a row the key in hand did not answer
	for {
		if b.key == nil {
			if job.Touched() {
				b.say("Plug %s's key back in to continue (%d of %d).", u.Name, n, len(b.cfg.Users))
			} else {
				b.say("Insert a key for %s (%d of %d).", u.Name, n, len(b.cfg.Users))
			}
			k, err := b.cfg.Keys.Next(ctx)
			if err != nil {
				return err
			}
			b.key, lost = k, 0
		}
		err := b.p.Provision(ctx, job, b.key)
		if errors.Is(err, errJournal) {
			return err
		}
		if err == nil {
			return b.done(u, job)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		switch {
		case errors.Is(err, ErrKeyNotAllowed), errors.Is(err, ErrKeyUnsupported), errors.Is(err, ErrResetDeclined):
			b.say("This key cannot be used and was not changed: %v. Remove it and insert another.", cause(err))
			b.key = nil
		case errors.Is(err, ErrReplugToReset):
			b.say("The key must be reset, which it allows only just after it is plugged in: unplug it, plug it back in, and touch it when it blinks.")
			b.key = nil
		case errors.Is(err, ErrWrongKey):
			over := false
			if b.cfg.Operator.WrongKey != nil {
				if over, err = b.cfg.Operator.WrongKey(ctx, u.Name); err != nil {
					return err
				}
			}
			if !over {
				b.say("This is not the key %s's provisioning started on; it was not changed. Plug that key back in.", u.Name)
				b.key = nil
				continue
			}
			if err := b.abandon(ctx, u, job, "started over on another key"); err != nil {
				return err
			}
			job.Wipe()
			job = b.newJob(u)
			b.say("Starting %s over on this key.", u.Name)
		case errors.Is(err, platform.ErrDeviceRemoved), errors.Is(err, platform.ErrNoDevice), errors.Is(err, platform.ErrPermission):
			// A key just plugged in may not answer yet (udev gives its
			// node its permissions a moment after it appears): asked
			// again a few times before it counts as gone, since it will
			// not arrive again unless it is plugged in again.
			if lost < lostTries {
				lost++
				if err := sleep(ctx, lostWait); err != nil {
					return err
				}
				continue
			}
			b.say("The key was removed before it was finished.")
			b.key = nil
		case errors.Is(err, platform.ErrTimeout):
			b.say("The key was not touched in time: touch it when it blinks.")
		case errors.Is(err, platform.ErrDeviceBusy):
			// Another program (or the app's own key list) has the key
			// for a moment: try again shortly.
			if err := sleep(ctx, busyWait); err != nil {
				return err
			}
		case sessionEnded(err):
			// Every later user would fail the same way: stop, with this
			// user left for the next run (which revokes what this
			// attempt enrolled).
			return fmt.Errorf("provision: %w: %w", ErrSessionEnded, cause(err))
		case b.serviceDown(err):
			b.say("The service did not answer (%v): trying again in %s; the key can stay plugged in.", cause(err), retry.Round(time.Second))
			if err := sleep(ctx, retry); err != nil {
				return err
			}
			retry = min(2*retry, 30*time.Second)
		default:
			return b.fail(ctx, u, job, err)
		}
	}
}

// errJournal marks a journal that could not be written: the run stops.
var errJournal = errors.New("provision: journal")

// newJob starts u's provisioning, journalling the enrollment as soon as
// the service has it.
func (b *batch) newJob(u User) *Job {
	j := NewJob(u)
	j.Enrolled = func(k *api.Key) error {
		return b.record(journal.Record{User: u.Name, Event: journal.Enrolled, CredentialID: k.ID,
			AAGUID: j.AAGUID(), Model: j.Model(), Nickname: k.Nickname})
	}
	return j
}

// done hands the PIN over on paper and records the user as done.
func (b *batch) done(u User, job *Job) error {
	r := b.results[u.Name]
	k := job.Key()
	r.Status, r.CredentialID, r.Model, r.AAGUID, r.Nickname = StatusEnrolled, k.ID, job.Model(), job.AAGUID(), k.Nickname
	r.Handover = handoverPath(u.Name)
	sheet := handover.Sheet{User: u.Name, Service: b.cfg.Provision.Origin.String(), KeyModel: job.Model(), Nickname: k.Nickname,
		AAGUID: job.AAGUID(), Batch: b.cfg.Provision.Batch, Issued: b.cfg.Now(), MinPINLength: job.MinPINLength(), PIN: job.PIN().Bytes()}
	if err := handover.Write(filepath.Join(b.cfg.Dir, r.Handover), sheet); err != nil {
		// The key is enrolled and its PIN still only in memory: stop
		// rather than go on losing PINs (a resumed run revokes it).
		return fmt.Errorf("provision: write %s's PIN page: %w", u.Name, err)
	}
	job.Wipe()
	if err := b.record(journal.Record{User: u.Name, Event: journal.Done, CredentialID: k.ID, AAGUID: job.AAGUID(),
		Model: job.Model(), Nickname: k.Nickname}); err != nil {
		return err
	}
	b.say("Done: %s's key is enrolled and its PIN page written. Remove the key.", u.Name)
	b.key = nil
	if b.cfg.Operator.UserDone != nil {
		b.cfg.Operator.UserDone(*r)
	}
	return nil
}

// fail gives up on u for this run: the key's enrollment, if any, is
// revoked, since its PIN is about to be forgotten.
func (b *batch) fail(ctx context.Context, u User, job *Job, err error) error {
	if aerr := b.abandon(ctx, u, job, "failed"); aerr != nil {
		return aerr
	}
	r := b.results[u.Name]
	r.Status, r.Model, r.AAGUID = StatusFailed, job.Model(), job.AAGUID()
	msg := cause(err).Error()
	if job.Touched() {
		msg += "; the key's PIN was set: reset the key before using it again"
	}
	r.Error = joinNote(r.Error, msg)
	if jerr := b.record(journal.Record{User: u.Name, Event: journal.Failed, AAGUID: job.AAGUID(), Model: job.Model(), Error: msg}); jerr != nil {
		return jerr
	}
	b.say("Could not provision a key for %s: %s. Remove the key; the next run tries %s again.", u.Name, msg, u.Name)
	b.key = nil
	if b.cfg.Operator.UserDone != nil {
		b.cfg.Operator.UserDone(*r)
	}
	return nil
}

// abandon revokes the enrollment job made, if any, and reports it.
func (b *batch) abandon(ctx context.Context, u User, job *Job, why string) error {
	k := job.Key()
	if k == nil {
		return nil
	}
	if _, err := b.cfg.Provision.API.RevokeUserKey(ctx, u.Name, k.ID, "provisioning "+why); err != nil {
		// The next run revokes it (the journal says enrolled, not done).
		return fmt.Errorf("provision: revoke %s's abandoned key %s: %w", u.Name, k.ID, err)
	}
	b.revoked++
	r := b.results[u.Name]
	r.Error = joinNote(r.Error, fmt.Sprintf("key %s (%s) was revoked: provisioning %s; reset that key before using it again", k.ID, job.Model(), why))
	return b.record(journal.Record{User: u.Name, Event: journal.Revoked, CredentialID: k.ID, AAGUID: job.AAGUID(), Model: job.Model()})
}

// ErrSessionEnded: the admin's session ended or lost its rights mid-run.
// Sign in again as an admin and run the batch again: it resumes.
var ErrSessionEnded = errors.New("the admin's session ended or may no longer provision")

// sessionEnded reports an error of the admin's session itself (ended,
// or no longer an admin's), as against one user's sign-in being refused.
func sessionEnded(err error) bool {
	var re *rpclient.Error
	if !errors.As(err, &re) {
		return false
	}
	switch re.Code {
	case "unauthenticated", "session_expired", "forbidden":
		return true
	}
	return false
}

// serviceDown reports an error of the service's availability, which
// passes: the step is tried again.
func (b *batch) serviceDown(err error) bool {
	return errors.Is(err, rpclient.ErrNetwork) || errors.Is(err, rpclient.ErrServer) || errors.Is(err, rpclient.ErrRateLimited)
}

// waitService tells the operator and waits before asking again.
func (b *batch) waitService(ctx context.Context, err error) error {
	b.say("The service did not answer (%v): trying again in %s.", cause(err), b.cfg.Retry.Round(time.Second))
	return sleep(ctx, b.cfg.Retry)
}

func (b *batch) summary() *Summary {
	s := &Summary{Revoked: b.revoked}
	for _, u := range b.cfg.Users {
		r := *b.results[u.Name]
		s.Results = append(s.Results, r)
		switch r.Status {
		case StatusEnrolled:
			s.Enrolled++
		case StatusFailed:
			s.Failed++
		default:
			s.Pending++
		}
	}
	return s
}

// writeResults writes the results CSV atomically (atomicfile.Write).
func (b *batch) writeResults(results []Result) error {
	err := atomicfile.Write(filepath.Join(b.cfg.Dir, ResultsFile), func(w io.Writer) error { return WriteResults(w, results) })
	if err != nil {
		return fmt.Errorf("provision: results: %w", err)
	}
	return nil
}

// handoverPath is user's PIN page, relative to the results directory: the
// name made safe for every file system, with a hash of the real one so
// that names differing only in what was replaced do not collide.
func handoverPath(user string) string {
	var b strings.Builder
	for _, r := range user {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_', r == '@':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	name := strings.TrimLeft(b.String(), ".")
	if len(name) > 64 {
		name = name[:64]
	}
	if name != user {
		name += "-" + shortHash(user)
	}
	return filepath.ToSlash(filepath.Join(HandoverDir, name+".pdf"))
}

// cause is err without the "provision a key for NAME:" prefix that
// Provision adds, for sentences that already name the user.
func cause(err error) error {
	if u := errors.Unwrap(err); u != nil && strings.HasPrefix(err.Error(), "provision a key for ") {
		return u
	}
	return err
}

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// shortHash is 8 hex digits of s's SHA-256.
func shortHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:4])
}
