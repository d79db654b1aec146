package libfido2

// The libfido2 1.12 calls behind PIN management, authenticatorConfig,
// reset and selection. go-libfido2 lacks the config calls and the touch
// polling; its SetPIN and Reset exist but open a handle of their own (so
// d.cancellable cannot reach them), return sentinels without the CTAP
// status, and leave the PIN in C memory that is never freed. These
// wrappers work on the package's own *device, inside call().

/*
#include <fido.h>
#include <fido/config.h>
#include <stdlib.h>
#include <string.h>

// kd_free_secret wipes a C copy of a PIN before freeing it.
static void kd_free_secret(char *s) {
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}
*/
import "C"

import "unsafe"

// cSecret copies a PIN into C memory; "" is NULL (no PIN). The returned
// function wipes and frees the copy.
func cSecret(s string) (*C.char, func()) {
	if s == "" {
		return nil, func() {}
	}
	p := C.CString(s)
	return p, func() { C.kd_free_secret(p) }
}

// setPIN is fido_dev_set_pin: a first PIN when old is "", else a change.
func (d *device) setPIN(pin, old string) int {
	cpin, freePIN := cSecret(pin)
	defer freePIN()
	cold, freeOld := cSecret(old)
	defer freeOld()
	return int(C.fido_dev_set_pin(d.dev, cpin, cold))
}

// retries is fido_dev_get_retry_count: the PIN attempts left, or -1 when
// the key does not say.
func (d *device) retries() int {
	var n C.int
	if C.fido_dev_get_retry_count(d.dev, &n) != C.FIDO_OK {
		return -1
	}
	return int(n)
}

// reset is fido_dev_reset (authenticatorReset). It waits for a touch.
func (d *device) reset() int { return int(C.fido_dev_reset(d.dev)) }

// setPINMinLen is fido_dev_set_pin_minlen: setMinPINLength with only
// newMinPINLength.
func (d *device) setPINMinLen(n int, pin string) int {
	cpin, free := cSecret(pin)
	defer free()
	return int(C.fido_dev_set_pin_minlen(d.dev, C.size_t(n), cpin))
}

// setPINMinLenRPIDs is fido_dev_set_pin_minlen_rpid: setMinPINLength with
// only minPinLengthRPIDs, which replaces the key's list; the minimum
// itself is left alone (libfido2 omits newMinPINLength).
func (d *device) setPINMinLenRPIDs(rpIDs []string, pin string) int {
	cpin, free := cSecret(pin)
	defer free()
	arr := (**C.char)(C.calloc(C.size_t(len(rpIDs)+1), C.size_t(unsafe.Sizeof((*C.char)(nil)))))
	defer C.free(unsafe.Pointer(arr))
	ptrs := unsafe.Slice(arr, len(rpIDs)+1)
	for i, id := range rpIDs {
		ptrs[i] = C.CString(id)
		defer C.free(unsafe.Pointer(ptrs[i]))
	}
	return int(C.fido_dev_set_pin_minlen_rpid(d.dev, arr, C.size_t(len(rpIDs)), cpin))
}

// forcePINChange is fido_dev_force_pin_change: setMinPINLength with only
// forceChangePin.
func (d *device) forcePINChange(pin string) int {
	cpin, free := cSecret(pin)
	defer free()
	return int(C.fido_dev_force_pin_change(d.dev, cpin))
}

// toggleAlwaysUV is fido_dev_toggle_always_uv.
func (d *device) toggleAlwaysUV(pin string) int {
	cpin, free := cSecret(pin)
	defer free()
	return int(C.fido_dev_toggle_always_uv(d.dev, cpin))
}

// enableEntAttest is fido_dev_enable_entattest.
func (d *device) enableEntAttest(pin string) int {
	cpin, free := cSecret(pin)
	defer free()
	return int(C.fido_dev_enable_entattest(d.dev, cpin))
}

// touchBegin is fido_dev_get_touch_begin: it sends a request that waits
// for a touch (a makeCredential with an empty pinUvAuthParam, which CTAP
// 2.1 keys answer after a touch) and returns without waiting.
func (d *device) touchBegin() int { return int(C.fido_dev_get_touch_begin(d.dev)) }

// touchStatus is fido_dev_get_touch_status: it waits up to ms for the
// answer to touchBegin's request.
func (d *device) touchStatus(ms int) (touched bool, code int) {
	var t C.int
	r := C.fido_dev_get_touch_status(d.dev, &t, C.int(ms))
	return t != 0, int(r)
}

// cancel is fido_dev_cancel (CTAPHID_CANCEL).
func (d *device) cancel() { C.fido_dev_cancel(d.dev) }
