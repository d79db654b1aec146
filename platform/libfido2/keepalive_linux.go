package libfido2

/*
#include <stdint.h>
#include <fido.h>

int kd_observe_io(fido_dev_t *dev, uintptr_t token);
*/
import "C"

import (
	"runtime/cgo"
	"strings"
)

// observeKeepalives makes dev, before it is opened, report the key's
// keep-alives to o, when its path is a device node: Linux hidraw nodes
// and the vhid shim's paths. Other paths (NFC readers) keep libfido2's
// own I/O. It returns a function that releases o's handle once dev is
// closed, or nil when nothing is observed.
func observeKeepalives(dev *C.fido_dev_t, path string, o *observer) (release func()) {
	if !strings.HasPrefix(path, "/") {
		return nil
	}
	h := cgo.NewHandle(o)
	if C.kd_observe_io(dev, C.uintptr_t(h)) != C.FIDO_OK {
		h.Delete()
		return nil
	}
	o.observed = true
	return h.Delete
}

//export kdKeepalive
func kdKeepalive(token C.uintptr_t, status C.int) {
	cgo.Handle(token).Value().(*observer).keepalive(byte(status))
}
