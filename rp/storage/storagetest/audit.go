package storagetest

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/keydesk/keydesk/rp/audit"
	"github.com/keydesk/keydesk/rp/storage"
)

var auditTests = []test{
	{"AppendAuditChainsEntriesAndStoresThemVerbatim", testAppendAudit},
	{"AppendAuditRefusesBadEntriesLeavingTheChain", testAppendAuditRefusals},
	{"AuditPagesFromASeq", testAuditPaging},
	{"AuditForUserListsTheUsersEntriesNewestFirst", testAuditForUser},
	{"AppendAuditFromConcurrentTransactionsKeepsOneChain", testAppendAuditRace},
}

var transactionTests = []test{
	{"FailedTransactionLeavesNothing", testTxRollback},
	{"PanickingTransactionLeavesNothing", testTxPanic},
	{"ConcurrentTransactionsCommitOrRollBackAlone", testTxIndependence},
	{"TransactionOfAnEndedContextRunsNot", testTxEndedContext},
	{"PingAnswers", func(t *testing.T, s storage.Store) { wantErr(t, "Ping", s.Ping(t.Context()), nil) }},
}

// entry is an audit entry about subject, at t0 plus n seconds.
func entry(n int, subject string) audit.Entry {
	return audit.Entry{
		Time: t0.Add(time.Duration(n) * time.Second), Actor: "admin", ActorRole: audit.RoleAdmin,
		Action: audit.ActionRoleChanged, Subject: subject, Details: map[string]string{"n": fmt.Sprint(n)},
	}
}

// appendAudit appends entries, each in its own transaction.
func appendAudit(t *testing.T, s storage.Store, entries ...audit.Entry) []audit.Entry {
	t.Helper()
	var out []audit.Entry
	for _, e := range entries {
		mustTx(t, s, func(tx storage.Tx) error {
			got, err := tx.AppendAudit(e)
			out = append(out, got)
			return err
		})
	}
	return out
}

// verifyChain reads the whole log, checks it with audit.Verifier and
// returns it.
func verifyChain(t *testing.T, s storage.Store) []audit.Entry {
	t.Helper()
	entries, err := s.Audit(t.Context(), 1, 100000)
	if err != nil {
		t.Fatal(err)
	}
	var v audit.Verifier
	for _, e := range entries {
		if err := v.Add(e); err != nil {
			t.Fatalf("the stored chain does not verify: %v", err)
		}
	}
	return entries
}

func testAppendAudit(t *testing.T, s storage.Store) {
	credID := base64.RawURLEncoding.EncodeToString(randomBytes(64))
	in := []audit.Entry{
		{Time: t0, Actor: "alice", ActorRole: audit.RoleUser, Action: audit.ActionCredentialRegistered, Subject: "alice",
			CredentialID: credID, RemoteAddr: "[::1]:4242",
			Details: map[string]string{"aaguid": "ee882879-721c-4913-9775-3dfcce97072a", "quote": `"<&>"\`, "text": "Ünï ✓", "empty": ""}},
		{Actor: "anonymous", ActorRole: audit.RoleAnonymous, Action: audit.ActionLoginFailed}, // no time: now
		{Time: t0.Add(time.Nanosecond * 1500), Actor: "system", ActorRole: audit.RoleSystem, Action: audit.ActionUserCreated,
			Subject: "bob", Details: map[string]string{}},
	}
	before := time.Now().Add(-time.Second)
	appended := appendAudit(t, s, in...)
	for i, e := range appended {
		if e.Seq != uint64(i+1) || e.Version != audit.Version || e.Hash.IsZero() {
			t.Errorf("appended entry %d: seq %d, version %d, hash %s", i, e.Seq, e.Version, e.Hash)
		}
	}
	if got := appended[1].Time; got.Before(before) || got.After(time.Now()) {
		t.Errorf("entry without a time got %v, want about now", got)
	}
	if got, want := appended[2].Time, t0.Add(time.Microsecond); !got.Equal(want) {
		t.Errorf("time %v, want it truncated to %v", got, want)
	}
	if appended[2].Details != nil {
		t.Errorf("empty details stored as %v, want nil", appended[2].Details)
	}
	stored := verifyChain(t, s)
	wantEqual(t, "stored entries", stored, appended)
}

func testAppendAuditRefusals(t *testing.T, s storage.Store) {
	first := appendAudit(t, s, entry(1, "alice"))[0]
	for _, tt := range []struct {
		name string
		e    audit.Entry
		want error
	}{
		{"SecretDetailKey", audit.Entry{Actor: "a", ActorRole: audit.RoleUser, Action: audit.ActionGrantIssued,
			Details: map[string]string{"grantCode": "hunter2"}}, audit.ErrSecretField},
		{"UnknownAction", audit.Entry{Actor: "a", ActorRole: audit.RoleUser, Action: "user.deleted"}, audit.ErrInvalid},
		{"NoActor", audit.Entry{ActorRole: audit.RoleUser, Action: audit.ActionLoginSucceeded}, audit.ErrInvalid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// A refused entry leaves the chain as it was, even in a
			// transaction that goes on and commits.
			mustTx(t, s, func(tx storage.Tx) error {
				_, err := tx.AppendAudit(tt.e)
				wantErr(t, "AppendAudit", err, tt.want)
				var fe *audit.FieldError
				if !errors.As(err, &fe) {
					t.Errorf("AppendAudit: %v, want a *audit.FieldError", err)
				}
				return nil
			})
		})
	}
	next := appendAudit(t, s, entry(2, "alice"))[0]
	if next.Seq != 2 || next.PrevHash != first.Hash {
		t.Errorf("entry after the refusals: seq %d prev %s, want seq 2 after %s", next.Seq, next.PrevHash, first.Hash)
	}
	verifyChain(t, s)
}

func testAuditPaging(t *testing.T, s storage.Store) {
	var in []audit.Entry
	for i := 1; i <= 5; i++ {
		in = append(in, entry(i, "alice"))
	}
	all := appendAudit(t, s, in...)
	for _, tt := range []struct {
		name  string
		from  uint64
		limit int
		want  []audit.Entry
	}{
		{"ShouldStartAtFromSeq", 2, 2, all[1:3]},
		{"ShouldStopAtTheEnd", 4, 10, all[3:]},
		{"ShouldTreatZeroAsTheStart", 0, 1, all[:1]},
		{"ShouldListNonePastTheEnd", 6, 10, nil},
		{"ShouldListNoneForZeroLimit", 1, 0, nil},
		{"ShouldListNoneForAHugeSeq", 1 << 63, 10, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Audit(t.Context(), tt.from, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			wantEqual(t, "Audit", got, tt.want)
		})
	}
}

func testAuditForUser(t *testing.T, s storage.Store) {
	byAlice := audit.Entry{Time: t0, Actor: "alice", ActorRole: audit.RoleUser, Action: audit.ActionCredentialRenamed, Subject: "alice"}
	aboutBob := entry(2, "bob")
	aliceByHelpdesk := audit.Entry{Time: t0, Actor: "jo", ActorRole: audit.RoleHelpdesk, Action: audit.ActionCredentialRevoked, Subject: "alice"}
	aliceFailing := audit.Entry{Time: t0, Actor: "alice", ActorRole: audit.RoleAnonymous, Action: audit.ActionLoginFailed}
	all := appendAudit(t, s, byAlice, aboutBob, aliceByHelpdesk, aliceFailing)
	for _, tt := range []struct {
		name  string
		user  string
		limit int
		want  []audit.Entry
	}{
		{"ShouldMatchActorOrSubjectNewestFirst", "alice", 10, []audit.Entry{all[3], all[2], all[0]}},
		{"ShouldFoldTheName", "ALICE", 10, []audit.Entry{all[3], all[2], all[0]}},
		{"ShouldStopAtLimit", "alice", 2, []audit.Entry{all[3], all[2]}},
		{"ShouldFindEntriesAsSubject", "bob", 10, []audit.Entry{all[1]}},
		{"ShouldFindEntriesAsActorOnAnother", "jo", 10, []audit.Entry{all[2]}},
		{"ShouldListNoneForAStranger", "carol", 10, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.AuditForUser(t.Context(), tt.user, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			wantEqual(t, "AuditForUser", got, tt.want)
		})
	}
}

func testAppendAuditRace(t *testing.T, s storage.Store) {
	errs := race(Racers, func(i int) error {
		return s.Tx(t.Context(), func(tx storage.Tx) error { _, err := tx.AppendAudit(entry(i, "alice")); return err })
	})
	wantEqual(t, "outcomes", tally(errs), map[string]int{"ok": Racers})
	if got := verifyChain(t, s); len(got) != Racers {
		t.Errorf("%d entries, want %d", len(got), Racers)
	}
}

// errRollback makes a transaction roll back.
var errRollback = errors.New("roll back")

// writeEverything makes one change of every kind, and an audit entry.
func writeEverything(tx storage.Tx) error {
	u := storage.User{ID: []byte("rolled-back"), Name: "ghost", CreatedAt: t0}
	if err := tx.CreateUser(u); err != nil {
		return err
	}
	if err := tx.CreateCredential(storage.Credential{ID: []byte("cred"), UserID: u.ID, CreatedAt: t0}); err != nil {
		return err
	}
	if err := tx.CreateCeremony(storage.Ceremony{ID: "cer", Kind: storage.CeremonyLogin, ExpiresAt: t0.Add(time.Hour)}); err != nil {
		return err
	}
	if err := tx.SaveCeremonyResult(storage.CeremonyResult{CeremonyID: "cer", RequestHash: []byte{1}, Result: []byte{1}, CreatedAt: t0}); err != nil {
		return err
	}
	if err := tx.CreateSession(storage.Session{TokenHash: []byte("tok"), UserID: u.ID, Scope: storage.ScopeFull, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
		return err
	}
	if err := tx.CreateGrant(storage.Grant{ID: "g", UserID: u.ID, Kind: storage.GrantEnrollment, CodeHash: []byte("code"), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour), MaxUses: 1}); err != nil {
		return err
	}
	if err := tx.SetPolicy(storage.Policy{Attestation: "verified"}); err != nil {
		return err
	}
	_, err := tx.AppendAudit(entry(1, "ghost"))
	return err
}

// wantNothingStored checks that no trace of writeEverything is left, and
// that the audit chain starts afresh.
func wantNothingStored(t *testing.T, s storage.Store) {
	t.Helper()
	ctx := t.Context()
	if n, err := s.CountUsers(ctx); err != nil || n != 0 {
		t.Errorf("CountUsers = %d, %v; want 0", n, err)
	}
	_, err := s.Credential(ctx, []byte("cred"))
	wantErr(t, "Credential", err, storage.ErrNotFound)
	_, err = s.CeremonyResult(ctx, "cer")
	wantErr(t, "CeremonyResult", err, storage.ErrNotFound)
	_, err = s.Session(ctx, []byte("tok"), t0)
	wantErr(t, "Session", err, storage.ErrNotFound)
	err = s.Tx(ctx, func(tx storage.Tx) error { _, err := tx.UseGrant([]byte("code"), t0); return err })
	wantErr(t, "UseGrant", err, storage.ErrNotFound)
	err = s.Tx(ctx, func(tx storage.Tx) error { _, err := tx.ConsumeCeremony("cer", t0); return err })
	wantErr(t, "ConsumeCeremony", err, storage.ErrNotFound)
	if p, err := s.Policy(ctx); err != nil || p.Attestation != "" {
		t.Errorf("Policy = %+v, %v; want the zero policy", p, err)
	}
	if es, err := s.Audit(ctx, 1, 10); err != nil || len(es) != 0 {
		t.Errorf("Audit = %d entries, %v; want none", len(es), err)
	}
	// The head rolled back too: the next entry is the first.
	if e := appendAudit(t, s, entry(2, "alice"))[0]; e.Seq != 1 || !e.PrevHash.IsZero() {
		t.Errorf("next entry: seq %d, prev %s; want the first entry", e.Seq, e.PrevHash)
	}
	// And everything can be written for real.
	mustTx(t, s, writeEverything)
}

func testTxRollback(t *testing.T, s storage.Store) {
	err := s.Tx(t.Context(), func(tx storage.Tx) error {
		if err := writeEverything(tx); err != nil {
			return err
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatalf("Tx = %v, want f's error", err)
	}
	wantNothingStored(t, s)
}

func testTxPanic(t *testing.T, s storage.Store) {
	func() {
		defer func() {
			if r := recover(); r != errRollback {
				t.Errorf("recovered %v, want f's panic", r)
			}
		}()
		s.Tx(t.Context(), func(tx storage.Tx) error {
			if err := writeEverything(tx); err != nil {
				return err
			}
			panic(errRollback)
		})
	}()
	wantNothingStored(t, s)
}

// Transactions running at once (which a store may commit together) keep
// their outcomes apart: one that fails or panics leaves nothing, the
// others all they wrote, and the audit chain has exactly theirs.
func testTxIndependence(t *testing.T, s storage.Store) {
	outcomes := []string{"ok", "error", "ok", "panic"}
	errs := race(Racers, func(i int) (err error) {
		outcome := outcomes[i%len(outcomes)]
		defer func() {
			if r := recover(); r != nil {
				if outcome != "panic" || r != errRollback {
					t.Errorf("transaction %d panicked with %v", i, r)
				}
				err = errors.New("panicked")
			}
		}()
		return s.Tx(t.Context(), func(tx storage.Tx) error {
			u := storage.User{ID: []byte(fmt.Sprintf("user-%d", i)), Name: fmt.Sprintf("user-%d", i), CreatedAt: t0}
			if err := tx.CreateUser(u); err != nil {
				return err
			}
			if _, err := tx.AppendAudit(entry(i, u.Name)); err != nil {
				return err
			}
			switch outcome {
			case "error":
				return errRollback
			case "panic":
				panic(errRollback)
			}
			return nil
		})
	})
	want := map[string]int{}
	for i, err := range errs {
		switch outcome := outcomes[i%len(outcomes)]; {
		case outcome == "ok" && err == nil, outcome == "error" && errors.Is(err, errRollback),
			outcome == "panic" && err != nil && err.Error() == "panicked":
			want[outcome]++
		default:
			t.Errorf("transaction %d (%s) = %v", i, outcome, err)
		}
		_, uerr := s.UserByName(t.Context(), fmt.Sprintf("user-%d", i))
		if ok := outcomes[i%len(outcomes)] == "ok"; ok != (uerr == nil) {
			t.Errorf("transaction %d (%s): UserByName = %v", i, outcomes[i%len(outcomes)], uerr)
		}
	}
	if got := verifyChain(t, s); len(got) != want["ok"] {
		t.Errorf("%d audit entries, want %d (the committed transactions')", len(got), want["ok"])
	}
}

// A transaction asked for with an ended context fails and writes nothing.
func testTxEndedContext(t *testing.T, s storage.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := s.Tx(ctx, writeEverything)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Tx = %v, want context.Canceled", err)
	}
	wantNothingStored(t, s)
}
