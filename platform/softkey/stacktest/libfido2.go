package stacktest

/*
#cgo LDFLAGS: -lfido2
#include <fido.h>
#include <signal.h>
#include <stdlib.h>

// block_sigurg keeps Go's preemption signal out of libfido2's ppoll, which
// would otherwise fail with EINTR (FIDO_ERR_RX) whenever the runtime
// preempts the thread waiting on the key.
static int block_sigurg(fido_dev_t *dev) {
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGURG);
	return fido_dev_set_sigmask(dev, &set);
}

// make_cred makes a non-discoverable ES256 credential on an open device
// and returns libfido2's result.
static int make_cred(fido_dev_t *dev) {
	unsigned char cdh[32] = {1};
	unsigned char uid[1] = {'u'};
	fido_cred_t *cred = fido_cred_new();
	int r;
	if ((r = fido_cred_set_type(cred, COSE_ES256)) != FIDO_OK ||
	    (r = fido_cred_set_clientdata_hash(cred, cdh, sizeof(cdh))) != FIDO_OK ||
	    (r = fido_cred_set_rp(cred, "example.com", NULL)) != FIDO_OK ||
	    (r = fido_cred_set_user(cred, uid, sizeof(uid), "u", NULL, NULL)) != FIDO_OK)
		goto out;
	r = fido_dev_make_cred(dev, cred, NULL);
out:
	fido_cred_free(&cred);
	return r;
}
*/
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"
)

// openDevice is a libfido2 device handle kept open across operations, as
// an application that holds on to a key does (go-libfido2 opens the device
// anew for every call).
type openDevice struct{ dev *C.fido_dev_t }

// openLibfido2 opens path with libfido2.
func openLibfido2(path string) (*openDevice, error) {
	C.fido_init(0)
	dev := C.fido_dev_new()
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	if r := C.fido_dev_open(dev, cpath); r != C.FIDO_OK {
		C.fido_dev_free(&dev)
		return nil, fmt.Errorf("fido_dev_open: %s", C.GoString(C.fido_strerr(r)))
	}
	// Only an open device takes a signal mask, so the open itself is not
	// covered; the tests run with asyncpreemptoff for that (softkeytest).
	if r := C.block_sigurg(dev); r != C.FIDO_OK {
		C.fido_dev_close(dev)
		C.fido_dev_free(&dev)
		return nil, fmt.Errorf("fido_dev_set_sigmask: %s", C.GoString(C.fido_strerr(r)))
	}
	return &openDevice{dev: dev}, nil
}

// makeCredential runs one makeCredential on the open handle.
func (d *openDevice) makeCredential() error {
	if r := C.make_cred(d.dev); r != C.FIDO_OK {
		return fmt.Errorf("fido_dev_make_cred: %s", C.GoString(C.fido_strerr(r)))
	}
	return nil
}

// getInfo runs one authenticatorGetInfo on the open handle.
func (d *openDevice) getInfo() error {
	info := C.fido_cbor_info_new()
	defer C.fido_cbor_info_free(&info)
	if r := C.fido_dev_get_cbor_info(d.dev, info); r != C.FIDO_OK {
		return fmt.Errorf("fido_dev_get_cbor_info: %s", C.GoString(C.fido_strerr(r)))
	}
	return nil
}

func (d *openDevice) close() {
	C.fido_dev_close(d.dev)
	C.fido_dev_free(&d.dev)
	runtime.KeepAlive(d)
}

// makeCredentialCancelled opens path with libfido2, starts a
// makeCredential, calls fido_dev_cancel once waiting fires, and returns
// libfido2's error name for the makeCredential. go-libfido2's own Cancel
// races with its open (it writes the device handle without its lock), so
// this goes to libfido2 directly.
func makeCredentialCancelled(path string, waiting <-chan struct{}) (string, error) {
	C.fido_init(0)
	dev := C.fido_dev_new()
	defer C.fido_dev_free(&dev)
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	if r := C.fido_dev_open(dev, cpath); r != C.FIDO_OK {
		return "", fmt.Errorf("fido_dev_open: %s", C.GoString(C.fido_strerr(r)))
	}
	defer C.fido_dev_close(dev)
	if r := C.block_sigurg(dev); r != C.FIDO_OK {
		return "", fmt.Errorf("fido_dev_set_sigmask: %s", C.GoString(C.fido_strerr(r)))
	}
	done := make(chan C.int, 1)
	go func() { done <- C.make_cred(dev) }()
	<-waiting
	if r := C.fido_dev_cancel(dev); r != C.FIDO_OK {
		return "", fmt.Errorf("fido_dev_cancel: %s", C.GoString(C.fido_strerr(r)))
	}
	return C.GoString(C.fido_strerr(<-done)), nil
}
