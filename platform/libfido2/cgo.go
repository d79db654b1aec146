package libfido2

/*
#cgo LDFLAGS: -lfido2
#include <fido.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

// kd_block_sigurg blocks SIGURG on the calling thread and saves the old
// mask. Go preempts goroutines with SIGURG and signals a thread even while
// it sits in C: libfido2's ppoll then fails with EINTR and the operation
// ends in FIDO_ERR_RX. With SIGURG blocked for the duration of a libfido2
// call the signal waits until Go code runs again.
static void kd_block_sigurg(sigset_t *old) {
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGURG);
	pthread_sigmask(SIG_BLOCK, &set, old);
}

static void kd_restore_sigmask(sigset_t *old) {
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

static const char *kd_str(char **arr, size_t i) { return arr[i]; }

// kd_get_info reads getInfo and the retry counters in one call: each
// blocking call out of Go costs the scheduler a hand-off, which on a
// small machine costs more than the request itself. A counter the key does
// not answer stays -1: the PIN's on a FIDO 2.0 key without clientPin, the
// UV one (asked only when getInfo lists the "uv" option) without built-in
// user verification.
static int kd_get_info(fido_dev_t *dev, fido_cbor_info_t *ci, int counters, int *pin_retries, int *uv_retries) {
	int r = fido_dev_get_cbor_info(dev, ci);
	if (r != FIDO_OK)
		return r;
	int n;
	*pin_retries = -1;
	*uv_retries = -1;
	if (!counters)
		return FIDO_OK;
	if (fido_dev_get_retry_count(dev, &n) == FIDO_OK)
		*pin_retries = n;
	char **names = fido_cbor_info_options_name_ptr(ci);
	for (size_t i = 0; i < fido_cbor_info_options_len(ci); i++) {
		if (strcmp(names[i], "uv") == 0) {
			if (fido_dev_get_uv_retry_count(dev, &n) == FIDO_OK)
				*uv_retries = n;
			break;
		}
	}
	return FIDO_OK;
}
static int kd_bool(const bool *arr, size_t i) { return arr[i]; }

// kd_access_errno checks read and write access to path through libc (so
// the vhid shim's paths are checked as libfido2 opens them): 0 or errno.
static int kd_access_errno(const char *path) {
	return access(path, R_OK | W_OK) == 0 ? 0 : errno;
}

// kd_is_present stats path through libc, so that paths an LD_PRELOAD
// shim provides (the vhid software key) are seen as libfido2 sees them.
static int kd_is_present(const char *path) {
	struct stat st;
	return stat(path, &st) == 0 && S_ISCHR(st.st_mode);
}
*/
import "C"

import (
	"context"
	"runtime"
	"syscall"
	"time"
	"unsafe"
)

func init() { C.fido_init(0) }

// call runs f on a locked thread with SIGURG blocked (see kd_block_sigurg).
func call(f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old C.sigset_t
	C.kd_block_sigurg(&old)
	defer C.kd_restore_sigmask(&old)
	f()
}

// device is an open libfido2 device handle.
type device struct {
	dev *C.fido_dev_t
	// obs hears the key's keep-alives (see observeKeepalives).
	obs     *observer
	release func()
}

// openDevice opens path, reporting the key's keep-alives to obs where
// they can be observed; the caller runs it inside call.
func openDevice(path string, obs *observer) (*device, int) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	d := &device{dev: C.fido_dev_new(), obs: obs}
	d.release = observeKeepalives(d.dev, path, obs)
	if r := C.fido_dev_open(d.dev, cpath); r != C.FIDO_OK {
		d.free()
		return nil, int(r)
	}
	return d, 0
}

func (d *device) close() {
	C.fido_dev_close(d.dev)
	d.free()
}

func (d *device) free() {
	C.fido_dev_free(&d.dev)
	if d.release != nil {
		d.release()
	}
}

func (d *device) isFIDO2() bool { return bool(C.fido_dev_is_fido2(d.dev)) }

// cancellable runs f, a libfido2 call that may wait for the user, and
// sends CTAPHID_CANCEL (fido_dev_cancel, which libfido2 allows from
// another thread) if ctx ends first. The caller runs inside call.
func (d *device) cancellable(ctx context.Context, f func()) {
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		select {
		case <-ctx.Done():
		case <-done:
			return
		}
		// A cancel that arrives before the key starts waiting (while
		// libfido2 still gets a PIN token, say) is ignored by the key, so
		// it is repeated until the call returns.
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			C.fido_dev_cancel(d.dev)
			select {
			case <-t.C:
			case <-done:
				return
			}
		}
	}()
	f()
	close(done)
	<-exited // the device may be closed next: no cancel may be in flight
}

// rawInfo is what getInfo and the retry counters return, as Go values.
type rawInfo struct {
	aaguid                []byte
	versions, extensions  []string
	options               map[string]bool
	algorithms, protocols []int
	fwVersion             uint64
	maxMsgSize, minPINLen int
	rkRemaining           int
	forcePINChange        bool
	pinRetries, uvRetries int
}

// info reads getInfo and the retry counters.
func (d *device) info() (*rawInfo, int) { return d.getInfo(true) }

// getInfo reads getInfo, and the retry counters when counters is set.
func (d *device) getInfo(counters bool) (*rawInfo, int) {
	ci := C.fido_cbor_info_new()
	defer C.fido_cbor_info_free(&ci)
	var pinRetries, uvRetries C.int
	c := C.int(0)
	if counters {
		c = 1
	}
	if r := C.kd_get_info(d.dev, ci, c, &pinRetries, &uvRetries); r != C.FIDO_OK {
		return nil, int(r)
	}
	ri := &rawInfo{options: map[string]bool{}, pinRetries: int(pinRetries), uvRetries: int(uvRetries)}
	ri.aaguid = C.GoBytes(unsafe.Pointer(C.fido_cbor_info_aaguid_ptr(ci)), C.int(C.fido_cbor_info_aaguid_len(ci)))
	ri.versions = goStrings(C.fido_cbor_info_versions_ptr(ci), C.fido_cbor_info_versions_len(ci))
	ri.extensions = goStrings(C.fido_cbor_info_extensions_ptr(ci), C.fido_cbor_info_extensions_len(ci))
	names := C.fido_cbor_info_options_name_ptr(ci)
	values := C.fido_cbor_info_options_value_ptr(ci)
	for i := C.size_t(0); i < C.fido_cbor_info_options_len(ci); i++ {
		ri.options[C.GoString(C.kd_str(names, i))] = C.kd_bool(values, i) != 0
	}
	for i := C.size_t(0); i < C.fido_cbor_info_algorithm_count(ci); i++ {
		ri.algorithms = append(ri.algorithms, int(C.fido_cbor_info_algorithm_cose(ci, i)))
	}
	protos := C.fido_cbor_info_protocols_ptr(ci)
	for _, p := range unsafe.Slice((*byte)(unsafe.Pointer(protos)), int(C.fido_cbor_info_protocols_len(ci))) {
		ri.protocols = append(ri.protocols, int(p))
	}
	ri.fwVersion = uint64(C.fido_cbor_info_fwversion(ci))
	ri.maxMsgSize = int(C.fido_cbor_info_maxmsgsiz(ci))
	ri.minPINLen = int(C.fido_cbor_info_minpinlen(ci))
	ri.rkRemaining = int(C.fido_cbor_info_rk_remaining(ci))
	ri.forcePINChange = bool(C.fido_cbor_info_new_pin_required(ci))
	return ri, 0
}

// present reports whether path is a character device, as libc sees it.
func present(path string) bool {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	return C.kd_is_present(cpath) != 0
}

// accessDenied reports whether path exists but may not be opened for
// reading and writing by this process.
func accessDenied(path string) bool {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	switch syscall.Errno(C.kd_access_errno(cpath)) {
	case syscall.EACCES, syscall.EPERM:
		return true
	}
	return false
}

func goStrings(arr **C.char, n C.size_t) []string {
	out := make([]string, 0, int(n))
	for i := C.size_t(0); i < n; i++ {
		out = append(out, C.GoString(C.kd_str(arr, i)))
	}
	return out
}
