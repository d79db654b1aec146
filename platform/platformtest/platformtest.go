// Package platformtest is the one table of cases every platform.Authenticator
// must pass, so that the GUI and the commands see the same behaviour from a
// USB key reached through libfido2 and from the in-process software key.
// Each implementation's tests call Run with a way to open a software key.
package platformtest

import (
	"context"
	"crypto/sha256"
	"errors"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/softkey"
)

// Opener creates a software key with cfg and returns it as the
// implementation under test sees it, plus the engine behind it (to seed
// credentials and to simulate a re-plug).
type Opener func(t *testing.T, cfg softkey.Config) (platform.Authenticator, *softkey.Authenticator)

const pin = "1234"

// testCase is one behaviour: a key made with cfg, and what must hold of
// it.
type testCase struct {
	name string
	cfg  softkey.Config
	run  func(t *testing.T, k platform.Authenticator, a *softkey.Authenticator)
}

// Run runs every case against open.
func Run(t *testing.T, open Opener) {
	ctx := context.Background()
	tests := []testCase{
		{name: "ShouldDescribeAFreshKey", run: func(t *testing.T, k platform.Authenticator, _ *softkey.Authenticator) {
			info := must(k.Info(ctx))(t)
			if info.Model != "Keydesk Software Key (virtual)" || !info.SupportsFIDO21() || info.PINSet() ||
				info.PINRetries != 8 || info.MinPINLength != 4 || info.RemainingDiscoverableCredentials != 25 ||
				info.EnterpriseAttestation() != platform.EnterpriseAttestationDisabled {
				t.Fatalf("info %+v", info)
			}
		}},
		{name: "ShouldDescribeAsInfoDoesButTheCounters", run: func(t *testing.T, k platform.Authenticator, _ *softkey.Authenticator) {
			wantKind(t, k.SetPIN(ctx, "1234"), nil)
			info := must(k.Info(ctx))(t)
			desc := must(k.Describe(ctx))(t)
			if desc.PINRetries != -1 || desc.UVRetries != -1 || info.UVRetries == -1 {
				t.Fatalf("Describe counters %d/%d, Info's %d/%d", desc.PINRetries, desc.UVRetries, info.PINRetries, info.UVRetries)
			}
			desc.PINRetries, desc.UVRetries = info.PINRetries, info.UVRetries
			if !reflect.DeepEqual(desc, info) {
				t.Fatalf("Describe %+v\nInfo %+v", desc, info)
			}
		}},
		{name: "ShouldCheckThePINPolicyFirst", run: func(t *testing.T, k platform.Authenticator, _ *softkey.Authenticator) {
			wantKind(t, k.SetPIN(ctx, "123"), platform.ErrPINPolicy)
			wantKind(t, k.SetPIN(ctx, string(make([]byte, 64))), platform.ErrPINPolicy)
			if must(k.Info(ctx))(t).PINSet() {
				t.Fatal("a refused PIN was set")
			}
		}},
		{name: "ShouldSetThePINOnce", run: func(t *testing.T, k platform.Authenticator, _ *softkey.Authenticator) {
			wantKind(t, k.SetPIN(ctx, pin), nil)
			if !must(k.Info(ctx))(t).PINSet() {
				t.Fatal("PIN not set")
			}
			wantKind(t, k.SetPIN(ctx, "5678"), platform.ErrNotAllowed)
		}},
		{name: "ShouldCountWrongPINsDownToThePowerCycle", run: func(t *testing.T, k platform.Authenticator, a *softkey.Authenticator) {
			wantKind(t, k.SetPIN(ctx, pin), nil)
			err := k.ChangePIN(ctx, "0000", "5678")
			wantKind(t, err, platform.ErrPINInvalid)
			var e *platform.Error
			if !errors.As(err, &e) || e.RetriesLeft != 7 {
				t.Fatalf("retries in %v", err)
			}
			wantKind(t, k.ChangePIN(ctx, "0000", "5678"), platform.ErrPINInvalid)
			wantKind(t, k.ChangePIN(ctx, "0000", "5678"), platform.ErrPINAuthBlocked)
			wantKind(t, k.ChangePIN(ctx, pin, "5678"), platform.ErrPINAuthBlocked)
			a.PowerCycle()
			wantKind(t, k.ChangePIN(ctx, pin, "5678"), nil)
		}},
		{name: "ShouldManageCredentials", run: func(t *testing.T, k platform.Authenticator, a *softkey.Authenticator) {
			ids := seed(t, a)
			wantKind(t, k.SetPIN(ctx, pin), nil)
			md := must(k.CredentialsMetadata(ctx, pin))(t)
			if md.Existing != 3 || md.Remaining != 22 {
				t.Fatalf("metadata %+v", md)
			}
			if got := summary(must(k.Credentials(ctx, pin))(t)); got != "a.example:alice/1,bob/2 b.example:carol/1" {
				t.Fatalf("credentials %s", got)
			}
			wantKind(t, k.UpdateUser(ctx, pin, ids[0], platform.User{ID: []byte("alice"), Name: "alice2"}), nil)
			wantKind(t, k.DeleteCredential(ctx, pin, ids[2]), nil)
			wantKind(t, k.DeleteCredential(ctx, pin, ids[2]), platform.ErrNoCredentials)
			if got := summary(must(k.Credentials(ctx, pin))(t)); got != "a.example:alice2/1,bob/2" {
				t.Fatalf("after update and delete: %s", got)
			}
			wantKind(t, func() error { _, err := k.Credentials(ctx, "0000"); return err }(), platform.ErrPINInvalid)
		}},
		{name: "ShouldListNoCredentialsOfAnEmptyKey", run: func(t *testing.T, k platform.Authenticator, _ *softkey.Authenticator) {
			wantKind(t, k.SetPIN(ctx, pin), nil)
			if rps := must(k.Credentials(ctx, pin))(t); rps == nil || len(rps) != 0 {
				t.Fatalf("credentials %#v", rps)
			}
		}},
		{name: "ShouldApplySecuritySettings", run: func(t *testing.T, k platform.Authenticator, _ *softkey.Authenticator) {
			wantKind(t, k.SetPIN(ctx, pin), nil)
			wantKind(t, k.ToggleAlwaysUV(ctx, pin), nil)
			wantKind(t, k.EnableEnterpriseAttestation(ctx, pin), nil)
			wantKind(t, k.SetMinPINLength(ctx, pin, 6, []string{"a.example"}), nil)
			info := must(k.Info(ctx))(t)
			if info.MinPINLength != 6 || !info.ForcePINChange || !info.HasOption("alwaysUv") ||
				info.EnterpriseAttestation() != platform.EnterpriseAttestationEnabled {
				t.Fatalf("info %+v", info)
			}
			wantKind(t, k.SetMinPINLength(ctx, pin, 5, nil), platform.ErrPINPolicy)
			wantKind(t, k.ChangePIN(ctx, pin, "12345"), platform.ErrPINPolicy)
			wantKind(t, k.ChangePIN(ctx, pin, "123456"), nil)
		}},
		{name: "ShouldEnrollAndManageFingerprints", run: func(t *testing.T, k platform.Authenticator, _ *softkey.Authenticator) {
			wantKind(t, k.SetPIN(ctx, pin), nil)
			var remaining []int
			pctx := platform.WithProgress(ctx, func(ev platform.ProgressEvent) {
				if ev.Stage == platform.StageSample {
					remaining = append(remaining, ev.Remaining)
				}
			})
			fp := must(k.EnrollFingerprint(pctx, pin, "thumb"))(t)
			if len(remaining) != 4 || remaining[3] != 0 || fp.Name != "thumb" {
				t.Fatalf("samples %v, fingerprint %+v", remaining, fp)
			}
			wantKind(t, k.RenameFingerprint(ctx, pin, fp.ID, "index"), nil)
			if fps := must(k.Fingerprints(ctx, pin))(t); len(fps) != 1 || fps[0].Name != "index" {
				t.Fatalf("fingerprints %+v", fps)
			}
			wantKind(t, k.DeleteFingerprint(ctx, pin, fp.ID), nil)
			if fps := must(k.Fingerprints(ctx, pin))(t); len(fps) != 0 {
				t.Fatalf("after delete %+v", fps)
			}
		}},
		{name: "ShouldResetOnATouch", run: func(t *testing.T, k platform.Authenticator, _ *softkey.Authenticator) {
			wantKind(t, k.SetPIN(ctx, pin), nil)
			wantKind(t, k.Reset(ctx), nil)
			if must(k.Info(ctx))(t).PINSet() {
				t.Fatal("PIN survived the reset")
			}
		}},
		{name: "ShouldSayTheResetWasDenied", cfg: softkey.Config{Presence: softkey.DenyAlways}, run: func(t *testing.T, k platform.Authenticator, _ *softkey.Authenticator) {
			wantKind(t, k.Reset(ctx), platform.ErrOperationDenied)
		}},
		{name: "ShouldSelectOnATouch", run: func(t *testing.T, k platform.Authenticator, _ *softkey.Authenticator) {
			wantKind(t, k.Select(ctx), nil)
		}},
		{name: "ShouldSayTheSelectionWasDenied", cfg: softkey.Config{Presence: softkey.DenyAlways}, run: func(t *testing.T, k platform.Authenticator, _ *softkey.Authenticator) {
			wantKind(t, k.Select(ctx), platform.ErrOperationDenied)
		}},
	}
	tests = append(tests, webAuthnCases()...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, a := open(t, tt.cfg)
			tt.run(t, k, a)
		})
	}
}

// must fails the test on err, else returns v: must(k.Info(ctx))(t).
func must[T any](v T, err error) func(*testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// wantKind fails unless err is of kind want (nil for success).
func wantKind(t *testing.T, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("got %v, want success", err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("got %v, want %v", err, want)
	}
}

// seed makes three discoverable credentials on the engine directly (a key
// without a PIN needs no token for them): alice and bob (credProtect 2) on
// a.example, carol on b.example. It returns their IDs.
func seed(t *testing.T, a *softkey.Authenticator) [][]byte {
	t.Helper()
	var ids [][]byte
	for _, c := range []struct {
		rp, user string
		prot     int
	}{{"a.example", "alice", 0}, {"a.example", "bob", 2}, {"b.example", "carol", 0}} {
		cdh := sha256.Sum256([]byte(c.user))
		req := map[int]any{
			1: cdh[:],
			2: map[string]any{"id": c.rp},
			3: map[string]any{"id": []byte(c.user), "name": c.user},
			4: []any{map[string]any{"type": "public-key", "alg": -7}},
			7: map[string]bool{"rk": true},
		}
		if c.prot != 0 {
			req[6] = map[string]any{"credProtect": c.prot}
		}
		body, err := cbor.CTAP2EncOptions().EncMode()
		if err != nil {
			t.Fatal(err)
		}
		params, err := body.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		resp := a.CBOR(context.Background(), append([]byte{byte(softkey.CmdMakeCredential)}, params...), nil)
		if len(resp) == 0 || resp[0] != 0 {
			t.Fatalf("makeCredential: % x", resp)
		}
		var att struct {
			AuthData []byte `cbor:"2,keyasint"`
		}
		if err := cbor.Unmarshal(resp[1:], &att); err != nil {
			t.Fatal(err)
		}
		n := int(att.AuthData[53])<<8 | int(att.AuthData[54])
		ids = append(ids, att.AuthData[55:55+n])
	}
	return ids
}

// summary writes credentials as "rp:user/protection,... rp:...", sorted.
func summary(rps []platform.RelyingParty) string {
	var parts []string
	for _, rp := range rps {
		var users []string
		for _, c := range rp.Credentials {
			users = append(users, c.User.Name+"/"+string(rune('0'+c.Protection)))
		}
		sort.Strings(users)
		parts = append(parts, rp.ID+":"+strings.Join(users, ","))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}
