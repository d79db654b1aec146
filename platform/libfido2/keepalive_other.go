//go:build !linux

package libfido2

/*
#include <fido.h>
*/
import "C"

// observeKeepalives observes nothing outside Linux: libfido2's own HID
// I/O there hides the key's keep-alives, and operations announce the
// touch they may need themselves.
func observeKeepalives(dev *C.fido_dev_t, path string, o *observer) (release func()) {
	return nil
}
