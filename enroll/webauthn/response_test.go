package webauthn

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"math/big"
	"slices"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/softkey"
)

// madeCredential registers with a software key directly and returns the
// registration and the key's answer.
func madeCredential(t *testing.T, key *softKey, edit func(o *CreationOptions)) (*Registration, *platform.Attestation) {
	t.Helper()
	o := creationOptions()
	o.Attestation = protocol.PreferDirectAttestation
	if edit != nil {
		edit(o)
	}
	reg, err := CreationRequest(mustOrigin(t, testOrigin), o, key.capabilities(t))
	if err != nil {
		t.Fatalf("CreationRequest: %v", err)
	}
	att, err := key.MakeCredential(context.Background(), reg.Request)
	if err != nil {
		t.Fatalf("MakeCredential: %v", err)
	}
	return reg, att
}

func TestRegistrationResponseRefusesInconsistentAnswers(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(r *Registration, a *platform.Attestation)
	}{
		{name: "ShouldRefuseNoAttestation"},
		{name: "ShouldRefuseAnswerForAnotherRP", tamper: func(r *Registration, a *platform.Attestation) { r.Request.RP.ID = "login.example.com" }},
		{name: "ShouldRefuseTruncatedAuthData", tamper: func(r *Registration, a *platform.Attestation) { a.AuthData = a.AuthData[:len(a.AuthData)-1] }},
		{name: "ShouldRefuseShortAuthData", tamper: func(r *Registration, a *platform.Attestation) { a.AuthData = a.AuthData[:36] }},
		{name: "ShouldRefuseTrailingBytes", tamper: func(r *Registration, a *platform.Attestation) { a.AuthData = append(a.AuthData, 0) }},
		{name: "ShouldRefuseMissingAttestedData", tamper: func(r *Registration, a *platform.Attestation) {
			a.AuthData = slices.Clone(a.AuthData[:37])
			a.AuthData[32] &^= flagAT
		}},
		{name: "ShouldRefuseOtherCredentialID", tamper: func(r *Registration, a *platform.Attestation) { a.CredentialID = []byte("someone else's") }},
		{name: "ShouldRefuseAlgorithmNotAskedFor", tamper: func(r *Registration, a *platform.Attestation) { r.Request.Algorithms = []int{platform.COSEAlgEdDSA} }},
		{name: "ShouldRefuseEmptyFormat", tamper: func(r *Registration, a *platform.Attestation) { a.Format = "" }},
		{name: "ShouldRefuseFormatWithSpace", tamper: func(r *Registration, a *platform.Attestation) { a.Format = "pac ked" }},
		{name: "ShouldRefuseStatementThatIsNotAMap", tamper: func(r *Registration, a *platform.Attestation) { a.AttStmt = []byte{0x01} }},
		{name: "ShouldRefuseTruncatedStatement", tamper: func(r *Registration, a *platform.Attestation) { a.AttStmt = a.AttStmt[:len(a.AttStmt)-1] }},
		{name: "ShouldRefuseStatementWithTrailingBytes", tamper: func(r *Registration, a *platform.Attestation) { a.AttStmt = append(a.AttStmt, 0xa0) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg, att := madeCredential(t, newSoftKey(t, softkey.Config{}), nil)
			// The untampered answer is accepted: the refusal below is the
			// tampering's doing.
			if _, err := reg.Response(att); err != nil {
				t.Fatalf("the key's own answer is refused: %v", err)
			}
			if tt.tamper == nil {
				att = nil
			} else {
				tt.tamper(reg, att)
			}
			_, err := reg.Response(att)
			wantKind(t, err, platform.ErrProtocol)
		})
	}
}

func TestAuthenticationResponseRefusesInconsistentAnswers(t *testing.T) {
	tests := []struct {
		name   string
		allow  bool // sign in with the credential in the allow list
		tamper func(a *Authentication, as *platform.Assertion)
	}{
		{name: "ShouldRefuseAnswerForAnotherRP", allow: true, tamper: func(a *Authentication, as *platform.Assertion) { a.Request.RPID = "login.example.com" }},
		{name: "ShouldRefuseCredentialNotAllowed", allow: true, tamper: func(a *Authentication, as *platform.Assertion) { as.CredentialID = []byte("other") }},
		{name: "ShouldRefuseMissingCredentialWithLongAllowList", allow: true, tamper: func(a *Authentication, as *platform.Assertion) {
			a.Request.AllowList = append(a.Request.AllowList, []byte("other"))
			as.CredentialID = nil
		}},
		{name: "ShouldRefuseEmptySignature", allow: true, tamper: func(a *Authentication, as *platform.Assertion) { as.Signature = nil }},
		{name: "ShouldRefuseTruncatedAuthData", allow: true, tamper: func(a *Authentication, as *platform.Assertion) { as.AuthData = as.AuthData[:20] }},
		{name: "ShouldRefuseDiscoverableWithoutUserHandle", tamper: func(a *Authentication, as *platform.Assertion) { as.User = nil }},
		{name: "ShouldRefuseOverlongUserHandle", tamper: func(a *Authentication, as *platform.Assertion) {
			as.User = &platform.User{ID: make([]byte, MaxUserIDLength+1)}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := newSoftKey(t, softkey.Config{})
			_, att := madeCredential(t, key, func(o *CreationOptions) {
				o.AuthenticatorSelection.ResidentKey = protocol.ResidentKeyRequirementRequired
			})
			ro := &RequestOptions{Challenge: challenge16, RPID: testRPID, UserVerification: protocol.VerificationDiscouraged}
			if tt.allow {
				ro.AllowCredentials = [][]byte{att.CredentialID}
			}
			auth, err := AssertionRequest(mustOrigin(t, testOrigin), ro, key.capabilities(t))
			if err != nil {
				t.Fatal(err)
			}
			as, err := key.GetAssertion(context.Background(), auth.Request)
			if err != nil {
				t.Fatalf("GetAssertion: %v", err)
			}
			if _, err := auth.Response(as[0]); err != nil {
				t.Fatalf("the key's own answer is refused: %v", err)
			}
			tt.tamper(auth, &as[0])
			_, err = auth.Response(as[0])
			wantKind(t, err, platform.ErrProtocol)
		})
	}
}

func TestAuthenticationResponseFillsOmittedCredential(t *testing.T) {
	key := newSoftKey(t, softkey.Config{})
	_, att := madeCredential(t, key, nil)
	auth, err := AssertionRequest(mustOrigin(t, testOrigin), &RequestOptions{
		Challenge: challenge16, RPID: testRPID, AllowCredentials: [][]byte{att.CredentialID},
	}, key.capabilities(t))
	if err != nil {
		t.Fatal(err)
	}
	as, err := key.GetAssertion(context.Background(), auth.Request)
	if err != nil {
		t.Fatal(err)
	}
	// CTAP 2.1 §6.2 lets a key omit the credential for a one-entry list.
	as[0].CredentialID = nil
	resp, err := auth.Response(as[0])
	if err != nil {
		t.Fatalf("Response: %v", err)
	}
	if got := decodeCredential(t, resp); got.ID != b64(att.CredentialID) || got.Response.UserHandle != "" {
		t.Errorf("id %q, userHandle %q", got.ID, got.Response.UserHandle)
	}
}

func TestPublicKeyOf(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecPoint, err := ecKey.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	offCurve := slices.Clone(ecPoint)
	offCurve[64] ^= 1
	e := big.NewInt(int64(rsaKey.E)).Bytes()
	tests := []struct {
		name    string
		cose    map[int]any
		wantAlg int
		wantPub any // nil: no SPKI
		wantErr bool
	}{
		{name: "ShouldConvertES256", cose: map[int]any{1: 2, 3: -7, -1: 1, -2: ecPoint[1:33], -3: ecPoint[33:]}, wantAlg: -7, wantPub: &ecKey.PublicKey},
		{name: "ShouldConvertEdDSA", cose: map[int]any{1: 1, 3: -8, -1: 6, -2: []byte(edPub)}, wantAlg: -8, wantPub: edPub},
		{name: "ShouldConvertRS256", cose: map[int]any{1: 3, 3: -257, -1: rsaKey.N.Bytes(), -2: e}, wantAlg: -257, wantPub: &rsaKey.PublicKey},
		{name: "ShouldLeaveUnknownAlgorithmWithoutSPKI", cose: map[int]any{1: 2, 3: -35, -1: 2}, wantAlg: -35},
		{name: "ShouldRefusePointOffTheCurve", cose: map[int]any{1: 2, 3: -7, -1: 1, -2: offCurve[1:33], -3: offCurve[33:]}, wantErr: true},
		{name: "ShouldRefuseWrongCurve", cose: map[int]any{1: 2, 3: -7, -1: 2, -2: ecPoint[1:33], -3: ecPoint[33:]}, wantErr: true},
		{name: "ShouldRefuseKeyTypeMismatch", cose: map[int]any{1: 2, 3: -8, -1: 6, -2: []byte(edPub)}, wantErr: true},
		{name: "ShouldRefuseShortRSAModulus", cose: map[int]any{1: 3, 3: -257, -1: rsaKey.N.Bytes()[:128], -2: e}, wantErr: true},
		{name: "ShouldRefuseEvenRSAExponent", cose: map[int]any{1: 3, 3: -257, -1: rsaKey.N.Bytes(), -2: []byte{1, 0, 0}}, wantErr: true},
		{name: "ShouldRefuseMissingAlgorithm", cose: map[int]any{1: 2, -1: 1, -2: ecPoint[1:33], -3: ecPoint[33:]}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := cborEnc.Marshal(tt.cose)
			if err != nil {
				t.Fatal(err)
			}
			alg, spki, err := publicKeyOf(raw)
			if tt.wantErr {
				wantKind(t, err, platform.ErrProtocol)
				return
			}
			if err != nil {
				t.Fatalf("publicKeyOf: %v", err)
			}
			if alg != tt.wantAlg {
				t.Errorf("alg = %d, want %d", alg, tt.wantAlg)
			}
			if tt.wantPub == nil {
				if spki != nil {
					t.Errorf("SPKI for an unknown algorithm")
				}
				return
			}
			want, err := x509.MarshalPKIXPublicKey(tt.wantPub)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(spki, want) {
				t.Errorf("SPKI differs from x509's encoding of the key")
			}
		})
	}
}
