package audit_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keydesk/keydesk/rp/audit"
)

// valid is an entry Next accepts, for tests to spoil one field at a time.
func valid() audit.Entry {
	return audit.Entry{
		Time:      time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC),
		Actor:     "alice",
		ActorRole: audit.RoleUser,
		Action:    audit.ActionLoginSucceeded,
		Subject:   "alice",
	}
}

func TestNextFillsChainFields(t *testing.T) {
	first, err := (audit.Chain{}).Next(nil, valid())
	if err != nil {
		t.Fatal(err)
	}
	if first.Seq != 1 || !first.PrevHash.IsZero() || first.Version != audit.Version {
		t.Errorf("first entry: seq %d, prevHash %s, version %d; want 1, zero, %d", first.Seq, first.PrevHash, first.Version, audit.Version)
	}
	second, err := (audit.Chain{}).Next(&first, valid())
	if err != nil {
		t.Fatal(err)
	}
	if second.Seq != 2 || second.PrevHash != first.Hash {
		t.Errorf("second entry: seq %d, prevHash %s; want 2, %s", second.Seq, second.PrevHash, first.Hash)
	}
	for _, e := range []audit.Entry{first, second} {
		h, err := e.ComputeHash()
		if err != nil {
			t.Fatal(err)
		}
		if e.Hash != h || e.Hash.IsZero() {
			t.Errorf("seq %d: Hash %s, want %s", e.Seq, e.Hash, h)
		}
	}
	if first.Hash == second.Hash {
		t.Error("two entries share a hash")
	}
}

func TestNextOverwritesChainFieldsTheCallerSet(t *testing.T) {
	e := valid()
	e.Version, e.Seq, e.PrevHash, e.Hash = 9, 42, audit.Digest{1}, audit.Digest{2}
	got, err := (audit.Chain{}).Next(nil, e)
	if err != nil {
		t.Fatal(err)
	}
	want, err := (audit.Chain{}).Next(nil, valid())
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != want.Version || got.Seq != want.Seq || got.PrevHash != want.PrevHash || got.Hash != want.Hash {
		t.Errorf("Next kept caller-set chain fields: %+v", got)
	}
}

func TestNextNormalizesTime(t *testing.T) {
	paris := time.FixedZone("CEST", 2*60*60)
	clock := time.Date(2026, 6, 1, 8, 0, 0, 123456789, paris)
	tests := []struct {
		name string
		in   time.Time
		want time.Time
	}{
		{"ShouldMoveToUTCAndTruncateToMicroseconds",
			time.Date(2026, 6, 1, 10, 30, 0, 999999999, paris),
			time.Date(2026, 6, 1, 8, 30, 0, 999999000, time.UTC)},
		{"ShouldTakeZeroTimeFromTheClock", time.Time{}, time.Date(2026, 6, 1, 6, 0, 0, 123456000, time.UTC)},
		{"ShouldDropTheMonotonicReading", time.Now(), time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := valid()
			e.Time = tt.in
			got, err := audit.Chain{Now: func() time.Time { return clock }}.Next(nil, e)
			if err != nil {
				t.Fatal(err)
			}
			if got.Time.Location() != time.UTC {
				t.Errorf("Time in %v, want UTC", got.Time.Location())
			}
			if got.Time.Nanosecond()%1000 != 0 {
				t.Errorf("Time %v keeps nanoseconds", got.Time)
			}
			if !tt.want.IsZero() && !got.Time.Equal(tt.want) {
				t.Errorf("Time = %v, want %v", got.Time, tt.want)
			}
			if strings.Contains(got.Time.String(), "m=") {
				t.Errorf("Time %v keeps a monotonic reading", got.Time)
			}
		})
	}
}

func TestNextCopiesDetails(t *testing.T) {
	e := valid()
	e.Details = map[string]string{"reason": "lost"}
	got, err := (audit.Chain{}).Next(nil, e)
	if err != nil {
		t.Fatal(err)
	}
	e.Details["reason"] = "changed after the fact"
	if got.Details["reason"] != "lost" {
		t.Fatalf("the entry shares the caller's map: reason = %q", got.Details["reason"])
	}
	if h, _ := got.ComputeHash(); h != got.Hash {
		t.Error("the entry no longer verifies")
	}

	e.Details = map[string]string{}
	got, err = (audit.Chain{}).Next(nil, e)
	if err != nil {
		t.Fatal(err)
	}
	if got.Details != nil {
		t.Errorf("empty Details = %#v, want nil so that it exports and hashes like none", got.Details)
	}
}

func TestNextRefusesInvalidEntries(t *testing.T) {
	tests := []struct {
		name      string
		mutate    func(e *audit.Entry)
		wantField string
	}{
		{"ShouldRefuseEmptyActor", func(e *audit.Entry) { e.Actor = "" }, "actor"},
		{"ShouldRefuseUnknownAction", func(e *audit.Entry) { e.Action = "credential.stolen" }, "action"},
		{"ShouldRefuseEmptyAction", func(e *audit.Entry) { e.Action = "" }, "action"},
		{"ShouldRefuseUnknownRole", func(e *audit.Entry) { e.ActorRole = "root" }, "actorRole"},
		{"ShouldRefuseEmptyRole", func(e *audit.Entry) { e.ActorRole = "" }, "actorRole"},
		{"ShouldRefuseLongActor", func(e *audit.Entry) { e.Actor = strings.Repeat("a", audit.MaxFieldBytes+1) }, "actor"},
		{"ShouldRefuseLongSubject", func(e *audit.Entry) { e.Subject = strings.Repeat("a", audit.MaxFieldBytes+1) }, "subject"},
		{"ShouldRefuseLongRemoteAddr", func(e *audit.Entry) { e.RemoteAddr = strings.Repeat("1", audit.MaxFieldBytes+1) }, "remoteAddr"},
		{"ShouldRefuseActorNotUTF8", func(e *audit.Entry) { e.Actor = "al\xffice" }, "actor"},
		{"ShouldRefuseNewlineInActor", func(e *audit.Entry) { e.Actor = "alice\nadmin" }, "actor"},
		{"ShouldRefuseNULInSubject", func(e *audit.Entry) { e.Subject = "alice\x00" }, "subject"},
		{"ShouldRefuseC1ControlInRemoteAddr", func(e *audit.Entry) { e.RemoteAddr = "1.2.3.4\u0085" }, "remoteAddr"},
		{"ShouldRefusePaddedCredentialID", func(e *audit.Entry) { e.CredentialID = "AQI=" }, "credentialId"},
		{"ShouldRefuseStdBase64CredentialID", func(e *audit.Entry) { e.CredentialID = "+/8" }, "credentialId"},
		{"ShouldRefuseNonCanonicalCredentialID", func(e *audit.Entry) { e.CredentialID = "AR" }, "credentialId"},
		{"ShouldRefuseLongCredentialID", func(e *audit.Entry) { e.CredentialID = strings.Repeat("A", 1368) }, "credentialId"},
		{"ShouldRefuseTooManyDetails", func(e *audit.Entry) {
			e.Details = map[string]string{}
			for i := range audit.MaxDetails + 1 {
				e.Details[string(rune('a'+i))] = "x"
			}
		}, "details"},
		{"ShouldRefuseEmptyDetailKey", func(e *audit.Entry) { e.Details = map[string]string{"": "x"} }, `details[""]`},
		{"ShouldRefuseLongDetailKey", func(e *audit.Entry) {
			e.Details = map[string]string{strings.Repeat("k", audit.MaxDetailKeyBytes+1): "x"}
		}, "details"},
		{"ShouldRefuseSpaceInDetailKey", func(e *audit.Entry) { e.Details = map[string]string{"old role": "x"} }, `details["old role"]`},
		{"ShouldRefuseNonASCIIDetailKey", func(e *audit.Entry) { e.Details = map[string]string{"rôle": "x"} }, `details["rôle"]`},
		{"ShouldRefuseLongDetailValue", func(e *audit.Entry) {
			e.Details = map[string]string{"reason": strings.Repeat("x", audit.MaxDetailValueBytes+1)}
		}, `details["reason"]`},
		{"ShouldRefuseDetailValueNotUTF8", func(e *audit.Entry) { e.Details = map[string]string{"reason": "\xc3"} }, `details["reason"]`},
		{"ShouldRefuseNULInDetailValue", func(e *audit.Entry) { e.Details = map[string]string{"reason": "a\x00b"} }, `details["reason"]`},
		{"ShouldRefuseTimeBefore1970", func(e *audit.Entry) { e.Time = time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC) }, "time"},
		{"ShouldRefuseTimeAfter9999", func(e *audit.Entry) { e.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := valid()
			tt.mutate(&e)
			_, err := (audit.Chain{}).Next(nil, e)
			var fe *audit.FieldError
			if !errors.As(err, &fe) || !errors.Is(err, audit.ErrInvalid) {
				t.Fatalf("Next() = %v, want a FieldError of kind ErrInvalid", err)
			}
			if fe.Field != tt.wantField {
				t.Errorf("Field = %q, want %q (%v)", fe.Field, tt.wantField, err)
			}
		})
	}
}

func TestNextAcceptsEdgeValues(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(e *audit.Entry)
	}{
		{"ShouldAcceptNoSubject", func(e *audit.Entry) { e.Subject = "" }},
		{"ShouldAcceptLongestActor", func(e *audit.Entry) { e.Actor = strings.Repeat("é", audit.MaxFieldBytes/2) }},
		{"ShouldAcceptLongestCredentialID", func(e *audit.Entry) { e.CredentialID = strings.Repeat("A", 1364) }},
		{"ShouldAcceptNewlinesInDetailValue", func(e *audit.Entry) { e.Details = map[string]string{"reason": "line one\nline two\ttab"} }},
		{"ShouldAcceptSecretWordsInValues", func(e *audit.Entry) { e.Details = map[string]string{"reason": "wrong PIN"} }},
		{"ShouldAcceptEveryRole", func(e *audit.Entry) { e.ActorRole = audit.RoleAnonymous }},
		{"ShouldAcceptYear9999", func(e *audit.Entry) { e.Time = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := valid()
			tt.mutate(&e)
			if _, err := (audit.Chain{}).Next(nil, e); err != nil {
				t.Fatalf("Next() = %v", err)
			}
		})
	}
}

func TestNextRefusesABadPrevious(t *testing.T) {
	good, err := (audit.Chain{}).Next(nil, valid())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mutate func(p *audit.Entry)
	}{
		{"ShouldRefusePrevWithoutSeq", func(p *audit.Entry) { p.Seq = 0 }},
		{"ShouldRefusePrevWithoutHash", func(p *audit.Entry) { p.Hash = audit.Digest{} }},
		{"ShouldRefusePrevAtTheLastSeq", func(p *audit.Entry) { p.Seq = 1<<63 - 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := good
			tt.mutate(&p)
			if _, err := (audit.Chain{}).Next(&p, valid()); !errors.Is(err, audit.ErrInvalid) {
				t.Fatalf("Next() = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestSecretGuard(t *testing.T) {
	const secret = "s3cr3t-value-4711"
	refused := []string{
		"token", "sessionToken", "TOKEN", "access_token", "grant", "grantId", "GrantCode", "pin", "PIN",
		"newPin", "pin_hash", "p-i-n", "secret", "clientSecret", "code", "recoveryCode", "password",
		"Passwd_Password", "challenge", "challengeResponse", "signature", "sig.nature", "assertion",
		"rawAssertion", "shipping", "nonce", "redeemNonce",
	}
	for _, k := range refused {
		t.Run("ShouldRefuse_"+k, func(t *testing.T) {
			e := valid()
			e.Details = map[string]string{"reason": "ok", k: secret}
			_, err := (audit.Chain{}).Next(nil, e)
			if !errors.Is(err, audit.ErrSecretField) {
				t.Fatalf("Next() = %v, want ErrSecretField", err)
			}
			var fe *audit.FieldError
			if !errors.As(err, &fe) || !strings.Contains(fe.Field, k) {
				t.Errorf("error %v does not name the key %q", err, k)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q repeats the secret value", err)
			}
		})
	}
	allowed := []string{
		"reason", "nickname", "oldNickname", "aaguid", "model", "attestation", "transports", "expires",
		"maxUses", "uses", "role", "oldRole", "newRole", "counter", "storedCounter", "userVerified",
		"backupEligible", "scope", "displayName", "policy.attestation", "issuer",
	}
	for _, k := range allowed {
		t.Run("ShouldAllow_"+k, func(t *testing.T) {
			e := valid()
			e.Details = map[string]string{k: "x"}
			if _, err := (audit.Chain{}).Next(nil, e); err != nil {
				t.Fatalf("Next() = %v", err)
			}
		})
	}
}

func TestActionsAreKnownAndStable(t *testing.T) {
	name := regexp.MustCompile(`^[a-z]+\.[a-z_]+$`)
	seen := map[audit.Action]bool{}
	for _, a := range audit.Actions() {
		if !a.Known() {
			t.Errorf("%q is listed but not Known", a)
		}
		if !name.MatchString(string(a)) {
			t.Errorf("%q is not noun.verb", a)
		}
		if seen[a] {
			t.Errorf("%q is listed twice", a)
		}
		seen[a] = true
	}
	for _, a := range []audit.Action{
		"credential.registered", "login.succeeded", "login.failed", "credential.renamed",
		"credential.revoked", "grant.issued", "grant.redeemed", "policy.changed", "role.changed",
		"recovery.requested", "recovery.approved", "recovery.redeemed", "recovery.failed",
		"recovery.refused", "recovery.expired", "recovery.codes_generated",
		"user.created", "user.disabled", "credential.counter_regressed",
	} {
		if !seen[a] {
			t.Errorf("%q is missing; stored entries use it", a)
		}
	}
	as := audit.Actions()
	as[0] = "x.y"
	if audit.Actions()[0] == "x.y" {
		t.Error("Actions() returns the package's own slice")
	}
	if audit.Action("USER.CREATED").Known() {
		t.Error("Known is not case-sensitive")
	}
}
