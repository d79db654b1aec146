package webauthn

import (
	"context"
	"errors"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/softkey"
)

// fuzzCaps is a key that can do everything, so that parsed options get as
// far into CreationRequest and AssertionRequest as they can.
var fuzzCaps = Capabilities{ResidentKey: true, PINSet: true, CredProtect: true}

// checkOptionsError fails unless err is one of the typed refusals the
// parsers promise.
func checkOptionsError(t *testing.T, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %T %v is not an *Error", err, err)
	}
	switch e.Kind {
	case ErrBadOptions, ErrRPIDMismatch, ErrUnsupportedAlgorithm:
	default:
		t.Fatalf("error of unexpected kind %v", e.Kind)
	}
}

// FuzzParseCreationOptions feeds arbitrary bytes to ParseCreationOptions:
// it must never panic, must refuse with a typed error, and what it accepts
// must satisfy the invariants CreationRequest relies on. Seeds live in
// testdata/fuzz/FuzzParseCreationOptions and run in every go test.
func FuzzParseCreationOptions(f *testing.F) {
	f.Add([]byte(`{"publicKey":{"rp":{"name":"E"},"user":{"id":"AQ","name":"a","displayName":"A"},"challenge":"AAECAwQFBgcICQoLDA0ODw","pubKeyCredParams":[]}}`))
	origin, err := ParseOrigin(testOrigin)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := ParseCreationOptions(data)
		if err != nil {
			checkOptionsError(t, err)
			return
		}
		if err := o.check(); err != nil {
			t.Fatalf("accepted options fail their own check: %v", err)
		}
		if o.Timeout < minTimeout || o.Timeout > maxTimeout {
			t.Fatalf("timeout %v outside the clamp", o.Timeout)
		}
		r, err := CreationRequest(origin, o, fuzzCaps)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("CreationRequest error %T is not an *Error", err)
			}
			return
		}
		if len(r.Request.ClientDataHash) != 32 || len(r.Request.Algorithms) == 0 || r.Request.PIN != "" {
			t.Fatalf("bad request %+v", r.Request)
		}
	})
}

// FuzzParseRequestOptions is FuzzParseCreationOptions for request
// options.
func FuzzParseRequestOptions(f *testing.F) {
	f.Add([]byte(`{"challenge":"AAECAwQFBgcICQoLDA0ODw","rpId":"example.com","allowCredentials":[{"type":"public-key","id":"AQID"}]}`))
	origin, err := ParseOrigin(testOrigin)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := ParseRequestOptions(data)
		if err != nil {
			checkOptionsError(t, err)
			return
		}
		if err := o.check(); err != nil {
			t.Fatalf("accepted options fail their own check: %v", err)
		}
		a, err := AssertionRequest(origin, o, fuzzCaps)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("AssertionRequest error %T is not an *Error", err)
			}
			return
		}
		if len(a.Request.ClientDataHash) != 32 || a.Request.RPID == "" {
			t.Fatalf("bad request %+v", a.Request)
		}
	})
}

// FuzzRegistrationResponse feeds arbitrary authenticator data and
// attestation statements, as a broken or hostile key could send, to
// Registration.Response: it must never panic, and must refuse with
// platform.ErrProtocol whatever it does not accept. The seed is a real
// answer of the software key.
func FuzzRegistrationResponse(f *testing.F) {
	key := newSoftKey(f, softkey.Config{})
	o := creationOptions()
	o.Attestation = protocol.PreferDirectAttestation
	origin, err := ParseOrigin(testOrigin)
	if err != nil {
		f.Fatal(err)
	}
	reg, err := CreationRequest(origin, o, key.capabilities(f))
	if err != nil {
		f.Fatal(err)
	}
	att, err := key.MakeCredential(context.Background(), reg.Request)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(att.AuthData, att.AttStmt, "packed")
	f.Add(att.AuthData, []byte{0xa0}, "none")
	f.Fuzz(func(t *testing.T, authData, attStmt []byte, format string) {
		for _, pref := range []protocol.ConveyancePreference{protocol.PreferNoAttestation, protocol.PreferDirectAttestation} {
			r := *reg
			r.Attestation = pref
			r.BlindAAGUID = true
			_, err := r.Response(&platform.Attestation{Format: format, AuthData: authData, AttStmt: attStmt})
			if err != nil && !errors.Is(err, platform.ErrProtocol) {
				t.Fatalf("error of unexpected kind: %v", err)
			}
		}
	})
}
