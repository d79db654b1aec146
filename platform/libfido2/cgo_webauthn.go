package libfido2

// libfido2's credential (fido_cred_t) and assertion (fido_assert_t) calls
// behind MakeCredential and GetAssertion. go-libfido2 wraps them, but
// loses what a WebAuthn client must pass on: it keeps only the first x5c
// certificate of the attestation statement, returns authenticator data
// CBOR-wrapped, and reads one assertion only. Every function here runs
// inside call (through session), like the rest of the package's libfido2
// calls.

/*
#include <fido.h>
#include <stdlib.h>
*/
import "C"

import (
	"unsafe"

	"github.com/keydesk/keydesk/platform"
)

// credential is a fido_cred_t: the request of one makeCredential, then
// its result.
type credential struct{ c *C.fido_cred_t }

func newCredential() (*credential, int) {
	c := C.fido_cred_new()
	if c == nil {
		return nil, cmCodeInternal
	}
	return &credential{c: c}, cmCodeOK
}

func (c *credential) free() { C.fido_cred_free(&c.c) }

// setType is fido_cred_set_type: the one COSE algorithm libfido2 asks the
// key for. It fails for an algorithm libfido2 does not know.
func (c *credential) setType(alg int) int { return int(C.fido_cred_set_type(c.c, C.int(alg))) }

// set fills in the request: client data hash, RP, user, excluded
// credentials, the rk and uv options and credProtect. uv asks libfido2
// for the key's built-in UV (a token got with
// getPinUvAuthTokenUsingUvWithPermissions, or the uv option); with a PIN
// libfido2 verifies the user with the PIN instead.
func (c *credential) set(req *platform.MakeCredentialRequest) int {
	p, n := cmBytes(req.ClientDataHash)
	if r := C.fido_cred_set_clientdata_hash(c.c, p, n); r != C.FIDO_OK {
		return int(r)
	}
	rpID, rpName := C.CString(req.RP.ID), cmCStringOrNil(req.RP.Name)
	defer C.free(unsafe.Pointer(rpID))
	defer C.free(unsafe.Pointer(rpName))
	if r := C.fido_cred_set_rp(c.c, rpID, rpName); r != C.FIDO_OK {
		return int(r)
	}
	name, display := cmCStringOrNil(req.User.Name), cmCStringOrNil(req.User.DisplayName)
	defer C.free(unsafe.Pointer(name))
	defer C.free(unsafe.Pointer(display))
	up, un := cmBytes(req.User.ID)
	if r := C.fido_cred_set_user(c.c, up, un, name, display, nil); r != C.FIDO_OK {
		return int(r)
	}
	for _, id := range req.ExcludeList {
		p, n := cmBytes(id)
		if r := C.fido_cred_exclude(c.c, p, n); r != C.FIDO_OK {
			return int(r)
		}
	}
	if req.ResidentKey {
		if r := C.fido_cred_set_rk(c.c, C.FIDO_OPT_TRUE); r != C.FIDO_OK {
			return int(r)
		}
	}
	if req.UserVerification {
		if r := C.fido_cred_set_uv(c.c, C.FIDO_OPT_TRUE); r != C.FIDO_OK {
			return int(r)
		}
	}
	if req.CredProtect != 0 {
		if r := C.fido_cred_set_prot(c.c, C.int(req.CredProtect)); r != C.FIDO_OK {
			return int(r)
		}
	}
	return cmCodeOK
}

// make is fido_dev_make_cred (authenticatorMakeCredential, after a PIN
// token with the mc permission when pin is set). It waits for a touch.
func (c *credential) make(d *device, pin string) int {
	cpin, freePIN := cSecret(pin)
	defer freePIN()
	return int(C.fido_dev_make_cred(d.dev, c.c, cpin))
}

// attestation reads the result: fmt, the raw authenticator data, the
// attestation statement as the key encoded it (libfido2 keeps its CBOR
// whole, while its x5c accessor has the first certificate only) and the
// credential ID from the attested credential data.
func (c *credential) attestation() *platform.Attestation {
	return &platform.Attestation{
		Format:       C.GoString(C.fido_cred_fmt(c.c)),
		AuthData:     cmGoBytes(C.fido_cred_authdata_raw_ptr(c.c), C.fido_cred_authdata_raw_len(c.c)),
		AttStmt:      cmGoBytes(C.fido_cred_attstmt_ptr(c.c), C.fido_cred_attstmt_len(c.c)),
		CredentialID: cmGoBytes(C.fido_cred_id_ptr(c.c), C.fido_cred_id_len(c.c)),
	}
}

// assertion is a fido_assert_t: the request of one getAssertion, then
// every assertion the key returned.
type assertion struct{ a *C.fido_assert_t }

func newAssertion() (*assertion, int) {
	a := C.fido_assert_new()
	if a == nil {
		return nil, cmCodeInternal
	}
	return &assertion{a: a}, cmCodeOK
}

func (a *assertion) free() { C.fido_assert_free(&a.a) }

// set fills in the request: RP ID, client data hash, allowed credentials
// and, when UV is required, the uv option (see credential.set). The up
// option is left to the key's default, a touch, unless the request is
// silent.
func (a *assertion) set(req *platform.GetAssertionRequest) int {
	rpID := C.CString(req.RPID)
	defer C.free(unsafe.Pointer(rpID))
	if r := C.fido_assert_set_rp(a.a, rpID); r != C.FIDO_OK {
		return int(r)
	}
	p, n := cmBytes(req.ClientDataHash)
	if r := C.fido_assert_set_clientdata_hash(a.a, p, n); r != C.FIDO_OK {
		return int(r)
	}
	for _, id := range req.AllowList {
		p, n := cmBytes(id)
		if r := C.fido_assert_allow_cred(a.a, p, n); r != C.FIDO_OK {
			return int(r)
		}
	}
	if req.Silent {
		if r := C.fido_assert_set_up(a.a, C.FIDO_OPT_FALSE); r != C.FIDO_OK {
			return int(r)
		}
	}
	uv := C.fido_opt_t(C.FIDO_OPT_OMIT)
	if req.UserVerification {
		uv = C.FIDO_OPT_TRUE
	}
	return int(C.fido_assert_set_uv(a.a, uv))
}

// get is fido_dev_get_assert: authenticatorGetAssertion (after a PIN
// token with the ga permission when pin is set), then
// authenticatorGetNextAssertion for each further credential the key
// announced. It waits for a touch.
func (a *assertion) get(d *device, pin string) int {
	cpin, freePIN := cSecret(pin)
	defer freePIN()
	return int(C.fido_dev_get_assert(d.dev, a.a, cpin))
}

// rawAssertion is one assertion as libfido2 1.12 holds it: its
// authenticator data is the CBOR byte string the key sent, header
// included (1.12 has no fido_assert_authdata_raw_ptr).
type rawAssertion struct {
	id, authDataCBOR, sig []byte
	user                  *platform.User
}

// results reads every assertion received.
func (a *assertion) results() []rawAssertion {
	n := C.fido_assert_count(a.a)
	out := make([]rawAssertion, 0, int(n))
	for i := C.size_t(0); i < n; i++ {
		r := rawAssertion{
			id:           cmGoBytes(C.fido_assert_id_ptr(a.a, i), C.fido_assert_id_len(a.a, i)),
			authDataCBOR: cmGoBytes(C.fido_assert_authdata_ptr(a.a, i), C.fido_assert_authdata_len(a.a, i)),
			sig:          cmGoBytes(C.fido_assert_sig_ptr(a.a, i), C.fido_assert_sig_len(a.a, i)),
		}
		// The user entity is optional (CTAP 2.1 §6.2.2 step 12); its ID
		// is its one required member.
		if uid := cmGoBytes(C.fido_assert_user_id_ptr(a.a, i), C.fido_assert_user_id_len(a.a, i)); len(uid) > 0 {
			r.user = &platform.User{
				ID:          uid,
				Name:        C.GoString(C.fido_assert_user_name(a.a, i)),
				DisplayName: C.GoString(C.fido_assert_user_display_name(a.a, i)),
			}
		}
		out = append(out, r)
	}
	return out
}
