package softkey

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// keepaliveLog records the keep-alive statuses a command sends, from the
// goroutine running it.
type keepaliveLog struct {
	mu       sync.Mutex
	statuses []byte
}

func (l *keepaliveLog) record(status byte) {
	l.mu.Lock()
	l.statuses = append(l.statuses, status)
	l.mu.Unlock()
}

func (l *keepaliveLog) seen() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.statuses)
}

// startCommand runs a command in the background, as a CTAPHID channel
// does, and returns the channel its response arrives on.
func startCommand(ctx context.Context, key *Authenticator, req []byte, keepalive func(byte)) <-chan []byte {
	done := make(chan []byte, 1)
	go func() { done <- key.CBOR(ctx, req, keepalive) }()
	return done
}

// waitResponse returns the response of a started command, failing the test
// rather than hanging when the command never finishes.
func waitResponse(t *testing.T, done <-chan []byte) Status {
	t.Helper()
	select {
	case resp := <-done:
		if len(resp) == 0 || (resp[0] != 0 && len(resp) != 1) {
			t.Fatalf("malformed response %x", resp)
		}
		return Status(resp[0])
	case <-time.After(10 * time.Second):
		t.Fatal("command did not finish")
		return 0
	}
}

// waitSignal waits for the key to ask for a touch.
func waitSignal(t *testing.T, waiting <-chan struct{}) {
	t.Helper()
	select {
	case <-waiting:
	case <-time.After(10 * time.Second):
		t.Fatal("the key never asked for a touch")
	}
}

// resetFixture is a key with everything a reset must wipe.
type resetFixture struct {
	*testClient
	rkID, serverID []byte
	caDER          []byte
}

const resetPIN = "123456"

func newResetFixture(t *testing.T, presence Presence) *resetFixture {
	t.Helper()
	c := newTestKey(t, Config{Presence: presence})
	f := &resetFixture{testClient: c, caDER: c.key.AttestationCA()}
	resp, err := c.makeCred(makeCredReq("example.com", "alice", true))
	wantStatus(t, err, StatusOK)
	f.rkID = credID(t, resp.AuthData)
	resp, err = c.makeCred(makeCredReq("example.com", "bob", false))
	wantStatus(t, err, StatusOK)
	f.serverID = credID(t, resp.AuthData)
	wantStatus(t, c.setPIN(2, resetPIN), StatusOK)
	tok := c.mustToken(2, resetPIN, PermAuthenticatorCfg|PermBioEnrollment, "")
	wantStatus(t, c.cfgCall(tok, ConfigSetMinPINLength, map[int]any{1: 6, 2: []string{"example.com"}}), StatusOK)
	wantStatus(t, c.cfgCall(tok, ConfigEnableEnterpriseAttestation, nil), StatusOK)
	c.enrollFinger(CmdBioEnrollment, tok)
	wantStatus(t, c.cfgCall(tok, ConfigToggleAlwaysUv, nil), StatusOK)
	return f
}

// wantIntact fails unless the key still holds what the fixture stored.
func (f *resetFixture) wantIntact() {
	f.t.Helper()
	info := f.readInfo()
	if !info.Options["clientPin"] || !info.Options["alwaysUv"] || !info.Options["uv"] || info.MinPINLength != 6 {
		f.t.Fatalf("configuration lost: options %v minPINLength %d", info.Options, info.MinPINLength)
	}
	tok := f.mustToken(2, resetPIN, PermGetAssertion, "example.com")
	for _, id := range [][]byte{f.rkID, f.serverID} {
		wantStatus(f.t, f.do(CmdGetAssertion, withToken(getAssertReq("example.com", id), tok, 2, 6), nil), StatusOK)
	}
}

func TestResetWipes(t *testing.T) {
	tests := []struct {
		name string
		// run acts after the reset; oldTok was issued before it.
		run  func(t *testing.T, f *resetFixture, oldTok *tokenHandle) error
		want Status
	}{
		{name: "ShouldRestoreFactoryInfo", run: func(t *testing.T, f *resetFixture, _ *tokenHandle) error {
			info := f.readInfo()
			wantOpts := map[string]bool{"clientPin": false, "alwaysUv": false, "ep": false, "uv": false, "bioEnroll": false}
			for opt, want := range wantOpts {
				if got, ok := info.Options[opt]; !ok || got != want {
					t.Errorf("getInfo %s = %v (present %v), want %v", opt, got, ok, want)
				}
			}
			if info.MinPINLength != defaultMinPINLength || info.ForcePINChange {
				t.Errorf("minPINLength %d forcePINChange %v", info.MinPINLength, info.ForcePINChange)
			}
			if info.RemainingDiscoverableCredentials == nil || *info.RemainingDiscoverableCredentials != defaultMaxCredentials {
				t.Errorf("remainingDiscoverableCredentials = %v", info.RemainingDiscoverableCredentials)
			}
			if retries, _ := f.retries(); retries != maxPINRetries {
				t.Errorf("pinRetries = %d", retries)
			}
			return nil
		}, want: StatusOK},
		{name: "ShouldForgetDiscoverableCredentials", run: func(_ *testing.T, f *resetFixture, _ *tokenHandle) error {
			return f.do(CmdGetAssertion, getAssertReq("example.com"), nil)
		}, want: ErrNoCredentials},
		{name: "ShouldNotOpenOldDiscoverableCredentialID", run: func(_ *testing.T, f *resetFixture, _ *tokenHandle) error {
			return f.do(CmdGetAssertion, getAssertReq("example.com", f.rkID), nil)
		}, want: ErrNoCredentials},
		{name: "ShouldNotOpenOldServerSideCredentialID", run: func(_ *testing.T, f *resetFixture, _ *tokenHandle) error {
			return f.do(CmdGetAssertion, getAssertReq("example.com", f.serverID), nil)
		}, want: ErrNoCredentials},
		{name: "ShouldNotExcludeOldCredentialID", run: func(_ *testing.T, f *resetFixture, _ *tokenHandle) error {
			req := makeCredReq("example.com", "alice", false)
			req[5] = []any{credDesc(f.serverID)}
			_, err := f.makeCred(req)
			return err
		}, want: StatusOK},
		{name: "ShouldForgetPIN", run: func(_ *testing.T, f *resetFixture, _ *tokenHandle) error {
			_, err := f.token(2, resetPIN, PermCredentialMgmt, "")
			return err
		}, want: ErrPINNotSet},
		{name: "ShouldInvalidateOldToken", run: func(_ *testing.T, f *resetFixture, oldTok *tokenHandle) error {
			return f.cmCall(CmdCredentialManagement, oldTok, CredMgmtGetCredsMetadata, nil, nil)
		}, want: ErrPINAuthInvalid},
		{name: "ShouldAcceptDefaultLengthPINAgain", run: func(_ *testing.T, f *resetFixture, _ *tokenHandle) error {
			return f.setPIN(2, "1234")
		}, want: StatusOK},
		{name: "ShouldKeepAttestationCA", run: func(t *testing.T, f *resetFixture, _ *tokenHandle) error {
			if !bytes.Equal(f.key.AttestationCA(), f.caDER) {
				t.Fatal("attestation CA changed by reset")
			}
			resp, err := f.makeCred(makeCredReq("example.com", "alice", false))
			if err == nil && !bytes.Equal(resp.AttStmt["x5c"].([]any)[1].([]byte), f.caDER) {
				t.Fatal("attestation chain does not end in the old CA")
			}
			return err
		}, want: StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newResetFixture(t, nil)
			oldTok := f.mustToken(2, resetPIN, PermCredentialMgmt, "")
			wantStatus(t, f.do(CmdReset, nil, nil), StatusOK)
			wantStatus(t, tt.run(t, f, oldTok), tt.want)
		})
	}
}

// A reset ends an enrollment in progress: the factory-fresh key knows no
// template ID from before (§6.7.3).
func TestResetCancelsEnrollment(t *testing.T) {
	c, tok := newBioKey(t, nil)
	var r authenticatorBioEnrollmentResponse
	wantStatus(t, c.bioCall(CmdBioEnrollment, tok, BioEnrollBegin, nil, &r), StatusOK)
	wantStatus(t, c.do(CmdReset, nil, nil), StatusOK)
	wantStatus(t, c.setPIN(2, bioPIN), StatusOK)
	tok = c.mustToken(2, bioPIN, PermBioEnrollment, "")
	wantStatus(t, c.bioCall(CmdBioEnrollment, tok, BioEnrollCaptureNextSample, map[int]any{1: r.TemplateID}, nil), ErrInvalidParameter)
}

func TestResetWindow(t *testing.T) {
	tests := []struct {
		name string
		// before runs between power-up and the reset request.
		before func(c *testClient)
		want   Status
	}{
		{name: "ShouldResetRightAfterPowerUp", before: func(*testClient) {}, want: StatusOK},
		{name: "ShouldResetWithinTenSeconds", before: func(c *testClient) { c.now = c.now.Add(9 * time.Second) }, want: StatusOK},
		{name: "ShouldRejectResetAfterTenSeconds", before: func(c *testClient) { c.now = c.now.Add(11 * time.Second) }, want: ErrNotAllowed},
		{name: "ShouldReopenWindowOnPowerCycle", before: func(c *testClient) {
			c.now = c.now.Add(11 * time.Second)
			c.key.PowerCycle()
			c.now = c.now.Add(5 * time.Second)
		}, want: StatusOK},
		{name: "ShouldCloseWindowAgainAfterPowerCycle", before: func(c *testClient) {
			c.key.PowerCycle()
			c.now = c.now.Add(11 * time.Second)
		}, want: ErrNotAllowed},
		{name: "ShouldNotReopenWindowWithOtherCommands", before: func(c *testClient) {
			c.now = c.now.Add(11 * time.Second)
			wantStatus(c.t, c.do(CmdGetInfo, nil, nil), StatusOK)
			wantStatus(c.t, c.do(CmdSelection, nil, nil), StatusOK)
		}, want: ErrNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestKey(t, Config{})
			_, err := c.makeCred(makeCredReq("example.com", "alice", true))
			wantStatus(t, err, StatusOK)
			tt.before(c)
			wantStatus(t, c.do(CmdReset, nil, nil), tt.want)
			err = c.do(CmdGetAssertion, getAssertReq("example.com"), nil)
			if tt.want == StatusOK {
				wantStatus(t, err, ErrNoCredentials)
			} else {
				wantStatus(t, err, StatusOK)
			}
		})
	}
}

func TestResetRefused(t *testing.T) {
	tests := []struct {
		name string
		// refuse sends the reset and answers the key's request for a touch.
		refuse func(t *testing.T, f *resetFixture, user *switchPresence) Status
		want   Status
	}{
		{name: "ShouldNotWipeWhenUserDenies", refuse: func(t *testing.T, f *resetFixture, user *switchPresence) Status {
			user.set(DenyAlways)
			defer user.set(ApproveAlways)
			st, _ := f.doRaw(CmdReset, nil)
			return st
		}, want: ErrOperationDenied},
		{name: "ShouldNotWipeWhenNobodyTouches", refuse: func(t *testing.T, f *resetFixture, user *switchPresence) Status {
			user.set(NewSignal(time.Millisecond))
			defer user.set(ApproveAlways)
			st, _ := f.doRaw(CmdReset, nil)
			return st
		}, want: ErrUserActionTimeout},
		{name: "ShouldNotWipeWhenCancelled", refuse: func(t *testing.T, f *resetFixture, user *switchPresence) Status {
			sig := NewSignal(0)
			user.set(sig)
			defer user.set(ApproveAlways)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			waiting := sig.Waiting()
			done := startCommand(ctx, f.key, []byte{byte(CmdReset)}, nil)
			waitSignal(t, waiting)
			cancel()
			return waitResponse(t, done)
		}, want: ErrKeepaliveCancel},
		{name: "ShouldNotWipeWhenUnplugged", refuse: func(t *testing.T, f *resetFixture, user *switchPresence) Status {
			sig := NewSignal(0)
			user.set(sig)
			defer user.set(ApproveAlways)
			waiting := sig.Waiting()
			done := startCommand(context.Background(), f.key, []byte{byte(CmdReset)}, nil)
			waitSignal(t, waiting)
			f.key.PowerCycle()
			return waitResponse(t, done)
		}, want: ErrKeepaliveCancel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user := &switchPresence{}
			f := newResetFixture(t, user)
			if got := tt.refuse(t, f, user); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			f.wantIntact()
		})
	}
}

func TestSelection(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T) Status
		want Status
	}{
		{name: "ShouldSucceedOnTouch", run: func(t *testing.T) Status {
			c := newTestKey(t, Config{})
			st, _ := c.doRaw(CmdSelection, nil)
			return st
		}, want: StatusOK},
		{name: "ShouldReportDenial", run: func(t *testing.T) Status {
			c := newTestKey(t, Config{Presence: DenyAlways})
			st, _ := c.doRaw(CmdSelection, nil)
			return st
		}, want: ErrOperationDenied},
		{name: "ShouldTimeOutWithoutTouch", run: func(t *testing.T) Status {
			c := newTestKey(t, Config{Presence: NewSignal(time.Millisecond)})
			st, _ := c.doRaw(CmdSelection, nil)
			return st
		}, want: ErrUserActionTimeout},
		{name: "ShouldSucceedWhenTouchedWhileWaiting", run: func(t *testing.T) Status {
			sig := NewSignal(0)
			c := newTestKey(t, Config{Presence: sig})
			waiting := sig.Waiting()
			done := startCommand(context.Background(), c.key, []byte{byte(CmdSelection)}, nil)
			waitSignal(t, waiting)
			if n := sig.Touch(); n != 1 {
				t.Fatalf("touch reached %d waiters", n)
			}
			return waitResponse(t, done)
		}, want: StatusOK},
		{name: "ShouldStopOnCancel", run: func(t *testing.T) Status {
			sig := NewSignal(0)
			c := newTestKey(t, Config{Presence: sig})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			waiting := sig.Waiting()
			done := startCommand(ctx, c.key, []byte{byte(CmdSelection)}, nil)
			waitSignal(t, waiting)
			cancel()
			return waitResponse(t, done)
		}, want: ErrKeepaliveCancel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.run(t); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestKeepaliveWhileWaitingForTouch(t *testing.T) {
	tests := []struct {
		name string
		req  []byte
	}{
		{name: "ShouldSendUPNeededDuringReset", req: []byte{byte(CmdReset)}},
		{name: "ShouldSendUPNeededDuringSelection", req: []byte{byte(CmdSelection)}},
		{name: "ShouldSendUPNeededDuringMakeCredential", req: append([]byte{byte(CmdMakeCredential)}, marshal(makeCredReq("example.com", "alice", false))...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sig := NewSignal(0)
			c := newTestKey(t, Config{Presence: sig})
			var log keepaliveLog
			waiting := sig.Waiting()
			done := startCommand(context.Background(), c.key, tt.req, log.record)
			waitSignal(t, waiting)
			// The key announces the wait once a touch is overdue (upNeededDelay).
			deadline := time.Now().Add(time.Second)
			for !slices.Contains(log.seen(), statusUPNeeded) {
				if time.Now().After(deadline) {
					t.Fatalf("keep-alive statuses while waiting = %v, want %d among them", log.seen(), statusUPNeeded)
				}
				time.Sleep(time.Millisecond)
			}
			sig.Touch()
			if st := waitResponse(t, done); st != StatusOK {
				t.Fatalf("got %v after touch", st)
			}
			if got := log.seen(); got[len(got)-1] != statusProcessing {
				t.Fatalf("keep-alive statuses = %v, want processing after the touch", got)
			}
		})
	}
}

func TestNoKeepaliveForInstantPresence(t *testing.T) {
	c := newTestKey(t, Config{})
	var log keepaliveLog
	resp := c.key.CBOR(context.Background(), []byte{byte(CmdSelection)}, log.record)
	if resp[0] != 0 || len(log.seen()) != 0 {
		t.Fatalf("status %x, keep-alives %v: an instant touch needs none", resp[0], log.seen())
	}
}
