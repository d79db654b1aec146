package libfido2

// libfido2's credential management (credman) and biometric enrollment
// (bio) APIs, for what go-libfido2 lacks or does on a device of its own:
// the credProtect level of each credential, updating the stored user,
// per-sample enrollment progress, and running a whole operation on the one
// device that (*Key).session opened. Every function here runs inside call
// (through session), like the rest of the package's libfido2 calls.

/*
#include <fido.h>
#include <fido/bio.h>
#include <fido/credman.h>
#include <stdlib.h>
#include <string.h>

*/
import "C"

import (
	"unsafe"

	"github.com/keydesk/keydesk/platform"
)

// libfido2 results this package branches on (libfido2 returns CTAP
// statuses with their own numbers, fido/err.h).
const (
	cmCodeOK            = int(C.FIDO_OK)
	cmCodeNoCredentials = int(C.FIDO_ERR_NO_CREDENTIALS) // 0x2E
	cmCodeInvalidOption = int(C.FIDO_ERR_INVALID_OPTION) // 0x2C
	cmCodeInternal      = int(C.FIDO_ERR_INTERNAL)
)

// bioStatusDatabaseFull is the lastEnrollSampleStatus saying no template
// fits any more (CTAP 2.1 §6.7, FIDO_BIO_ENROLL_FP_DATABASE_FULL).
const bioStatusDatabaseFull = int(C.FIDO_BIO_ENROLL_FP_DATABASE_FULL)

// cmBytes points C at b's bytes (no Go pointers inside, so cgo allows it).
func cmBytes(b []byte) (*C.uchar, C.size_t) {
	if len(b) == 0 {
		return nil, 0
	}
	return (*C.uchar)(unsafe.Pointer(unsafe.SliceData(b))), C.size_t(len(b))
}

// cmGoBytes copies n bytes at p, nil when there are none.
func cmGoBytes(p *C.uchar, n C.size_t) []byte {
	if p == nil || n == 0 {
		return nil
	}
	return C.GoBytes(unsafe.Pointer(p), C.int(n))
}

// cmCStringOrNil is nil for "", so that libfido2 leaves the field out.
func cmCStringOrNil(s string) *C.char {
	if s == "" {
		return nil
	}
	return C.CString(s)
}

// credmanMetadata runs getCredsMetadata (fido_credman_get_dev_metadata).
func (d *device) credmanMetadata(pin string) (platform.CredentialsMetadata, int) {
	md := C.fido_credman_metadata_new()
	if md == nil {
		return platform.CredentialsMetadata{}, cmCodeInternal
	}
	defer C.fido_credman_metadata_free(&md)
	cpin, freePIN := cSecret(pin)
	defer freePIN()
	if r := C.fido_credman_get_dev_metadata(d.dev, md, cpin); r != C.FIDO_OK {
		return platform.CredentialsMetadata{}, int(r)
	}
	return platform.CredentialsMetadata{
		Existing:  int(C.fido_credman_rk_existing(md)),
		Remaining: int(C.fido_credman_rk_remaining(md)),
	}, cmCodeOK
}

// credmanRP is one relying party from enumerateRPs.
type credmanRP struct {
	id, name string
	idOK     bool // the key sent an RP ID (credentials are listed by it)
}

// credmanRPs runs enumerateRPsBegin and enumerateRPsGetNextRP
// (fido_credman_get_dev_rp). An empty key answers NO_CREDENTIALS.
func (d *device) credmanRPs(pin string) ([]credmanRP, int) {
	rp := C.fido_credman_rp_new()
	if rp == nil {
		return nil, cmCodeInternal
	}
	defer C.fido_credman_rp_free(&rp)
	cpin, freePIN := cSecret(pin)
	defer freePIN()
	if r := C.fido_credman_get_dev_rp(d.dev, rp, cpin); r != C.FIDO_OK {
		return nil, int(r)
	}
	n := C.fido_credman_rp_count(rp)
	out := make([]credmanRP, 0, int(n))
	for i := C.size_t(0); i < n; i++ {
		id := C.fido_credman_rp_id(rp, i)
		out = append(out, credmanRP{
			id:   C.GoString(id), // "" for NULL
			name: C.GoString(C.fido_credman_rp_name(rp, i)),
			idOK: id != nil,
		})
	}
	return out, cmCodeOK
}

// credmanRKs runs enumerateCredentialsBegin and
// enumerateCredentialsGetNextCredential for rpID (fido_credman_get_dev_rk),
// with the credProtect level of each (fido_cred_prot).
func (d *device) credmanRKs(rpID, pin string) ([]platform.Credential, int) {
	rk := C.fido_credman_rk_new()
	if rk == nil {
		return nil, cmCodeInternal
	}
	defer C.fido_credman_rk_free(&rk)
	crp := C.CString(rpID)
	defer C.free(unsafe.Pointer(crp))
	cpin, freePIN := cSecret(pin)
	defer freePIN()
	if r := C.fido_credman_get_dev_rk(d.dev, crp, rk, cpin); r != C.FIDO_OK {
		return nil, int(r)
	}
	n := C.fido_credman_rk_count(rk)
	out := make([]platform.Credential, 0, int(n))
	for i := C.size_t(0); i < n; i++ {
		c := C.fido_credman_rk(rk, i)
		if c == nil {
			continue
		}
		out = append(out, platform.Credential{
			ID: cmGoBytes(C.fido_cred_id_ptr(c), C.fido_cred_id_len(c)),
			User: platform.User{
				ID:          cmGoBytes(C.fido_cred_user_id_ptr(c), C.fido_cred_user_id_len(c)),
				Name:        C.GoString(C.fido_cred_user_name(c)),
				DisplayName: C.GoString(C.fido_cred_display_name(c)),
			},
			Protection: int(C.fido_cred_prot(c)),
		})
	}
	return out, cmCodeOK
}

// credmanDelete runs deleteCredential (fido_credman_del_dev_rk).
func (d *device) credmanDelete(credID []byte, pin string) int {
	p, n := cmBytes(credID)
	cpin, freePIN := cSecret(pin)
	defer freePIN()
	return int(C.fido_credman_del_dev_rk(d.dev, p, n, cpin))
}

// credmanUpdateUser runs updateUserInformation (fido_credman_set_dev_rk):
// libfido2 sends the credential ID and the user entity of a fido_cred_t
// (src/credman.c, CMD_UPDATE_CRED). An empty name or display name is left
// out, which CTAP 2.1 §6.8.6 reads as "remove it".
func (d *device) credmanUpdateUser(credID []byte, user platform.User, pin string) int {
	cred := C.fido_cred_new()
	if cred == nil {
		return cmCodeInternal
	}
	defer C.fido_cred_free(&cred)
	idp, idn := cmBytes(credID)
	if r := C.fido_cred_set_id(cred, idp, idn); r != C.FIDO_OK {
		return int(r)
	}
	name, display := cmCStringOrNil(user.Name), cmCStringOrNil(user.DisplayName)
	defer C.free(unsafe.Pointer(name))
	defer C.free(unsafe.Pointer(display))
	up, un := cmBytes(user.ID)
	if r := C.fido_cred_set_user(cred, up, un, name, display, nil); r != C.FIDO_OK {
		return int(r)
	}
	cpin, freePIN := cSecret(pin)
	defer freePIN()
	return int(C.fido_credman_set_dev_rk(d.dev, cred, cpin))
}

// bioInfo runs getFingerprintSensorInfo (fido_bio_dev_get_info), which
// needs no PIN: a key without a sensor answers INVALID_COMMAND.
func (d *device) bioInfo() (maxSamples int, code int) {
	info := C.fido_bio_info_new()
	if info == nil {
		return 0, cmCodeInternal
	}
	defer C.fido_bio_info_free(&info)
	if r := C.fido_bio_dev_get_info(d.dev, info); r != C.FIDO_OK {
		return 0, int(r)
	}
	return int(C.fido_bio_info_max_samples(info)), cmCodeOK
}

// bioTemplates runs enumerateEnrollments
// (fido_bio_dev_get_template_array). CTAP 2.1 §6.7.6: a key without
// templates answers INVALID_OPTION.
func (d *device) bioTemplates(pin string) ([]platform.Fingerprint, int) {
	ta := C.fido_bio_template_array_new()
	if ta == nil {
		return nil, cmCodeInternal
	}
	defer C.fido_bio_template_array_free(&ta)
	cpin, freePIN := cSecret(pin)
	defer freePIN()
	if r := C.fido_bio_dev_get_template_array(d.dev, ta, cpin); r != C.FIDO_OK {
		return nil, int(r)
	}
	n := C.fido_bio_template_array_count(ta)
	out := make([]platform.Fingerprint, 0, int(n))
	for i := C.size_t(0); i < n; i++ {
		t := C.fido_bio_template(ta, i)
		if t == nil {
			continue
		}
		out = append(out, platform.Fingerprint{
			ID:   cmGoBytes(C.fido_bio_template_id_ptr(t), C.fido_bio_template_id_len(t)),
			Name: C.GoString(C.fido_bio_template_name(t)),
		})
	}
	return out, cmCodeOK
}

// bioTemplate builds a fido_bio_template_t with id and, when setName,
// name; free it with fido_bio_template_free.
func bioTemplate(id []byte, name string, setName bool) (*C.fido_bio_template_t, int) {
	t := C.fido_bio_template_new()
	if t == nil {
		return nil, cmCodeInternal
	}
	p, n := cmBytes(id)
	if r := C.fido_bio_template_set_id(t, p, n); r != C.FIDO_OK {
		C.fido_bio_template_free(&t)
		return nil, int(r)
	}
	if setName {
		cname := C.CString(name)
		r := C.fido_bio_template_set_name(t, cname)
		C.free(unsafe.Pointer(cname))
		if r != C.FIDO_OK {
			C.fido_bio_template_free(&t)
			return nil, int(r)
		}
	}
	return t, cmCodeOK
}

// bioSetName runs setFriendlyName (fido_bio_dev_set_template_name).
func (d *device) bioSetName(id []byte, name, pin string) int {
	t, code := bioTemplate(id, name, true)
	if code != cmCodeOK {
		return code
	}
	defer C.fido_bio_template_free(&t)
	cpin, freePIN := cSecret(pin)
	defer freePIN()
	return int(C.fido_bio_dev_set_template_name(d.dev, t, cpin))
}

// bioRemove runs removeEnrollment (fido_bio_dev_enroll_remove).
func (d *device) bioRemove(id []byte, pin string) int {
	t, code := bioTemplate(id, "", false)
	if code != cmCodeOK {
		return code
	}
	defer C.fido_bio_template_free(&t)
	cpin, freePIN := cSecret(pin)
	defer freePIN()
	return int(C.fido_bio_dev_enroll_remove(d.dev, t, cpin))
}

// bioCancelEnrollment runs cancelCurrentEnrollment
// (fido_bio_dev_enroll_cancel), which needs no PIN.
func (d *device) bioCancelEnrollment() int {
	return int(C.fido_bio_dev_enroll_cancel(d.dev))
}

// bioEnroller is one enrollment: the template the key is building and
// libfido2's enrollment state (which keeps the PIN token of enrollBegin
// for the enrollCaptureNextSample requests that follow).
type bioEnroller struct {
	t *C.fido_bio_template_t
	e *C.fido_bio_enroll_t
}

func newBioEnroller() (*bioEnroller, int) {
	t := C.fido_bio_template_new()
	e := C.fido_bio_enroll_new()
	if t == nil || e == nil {
		C.fido_bio_template_free(&t)
		C.fido_bio_enroll_free(&e)
		return nil, cmCodeInternal
	}
	return &bioEnroller{t: t, e: e}, cmCodeOK
}

func (b *bioEnroller) free() {
	C.fido_bio_template_free(&b.t)
	C.fido_bio_enroll_free(&b.e)
}

// begin gets a PIN token with the be permission and runs enrollBegin,
// which takes the first sample (fido_bio_dev_enroll_begin).
func (b *bioEnroller) begin(d *device, timeoutMS uint32, pin string) int {
	cpin, freePIN := cSecret(pin)
	defer freePIN()
	return int(C.fido_bio_dev_enroll_begin(d.dev, b.t, b.e, C.uint32_t(timeoutMS), cpin))
}

// next runs enrollCaptureNextSample (fido_bio_dev_enroll_continue).
func (b *bioEnroller) next(d *device, timeoutMS uint32) int {
	return int(C.fido_bio_dev_enroll_continue(d.dev, b.t, b.e, C.uint32_t(timeoutMS)))
}

// remaining is the samples the key still needs, after the last one.
func (b *bioEnroller) remaining() int { return int(C.fido_bio_enroll_remaining_samples(b.e)) }

// lastStatus is the last sample's lastEnrollSampleStatus.
func (b *bioEnroller) lastStatus() int { return int(C.fido_bio_enroll_last_status(b.e)) }

// id is the template ID enrollBegin returned.
func (b *bioEnroller) id() []byte {
	return cmGoBytes(C.fido_bio_template_id_ptr(b.t), C.fido_bio_template_id_len(b.t))
}
