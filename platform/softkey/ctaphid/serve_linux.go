//go:build linux

package ctaphid

import (
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// reportWriter sends the reports of one message with a single sendmmsg,
// one datagram each: the host then finds the whole message queued when it
// wakes, instead of waking once per report.
type reportWriter struct {
	rc   syscall.RawConn
	err  error
	msgs []mmsghdr
	iovs []unix.Iovec
}

// mmsghdr is struct mmsghdr from sendmmsg(2).
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

func newReportWriter(c *net.UnixConn) *reportWriter {
	rc, err := c.SyscallConn()
	return &reportWriter{rc: rc, err: err}
}

func (w *reportWriter) write(reports [][]byte) error {
	if w.err != nil {
		return w.err
	}
	w.msgs = w.msgs[:0]
	w.iovs = w.iovs[:0]
	for _, r := range reports {
		w.iovs = append(w.iovs, unix.Iovec{Base: &r[0]})
		w.iovs[len(w.iovs)-1].SetLen(len(r))
	}
	for i := range w.iovs {
		m := mmsghdr{}
		m.hdr.Iov = &w.iovs[i]
		m.hdr.SetIovlen(1)
		w.msgs = append(w.msgs, m)
	}
	sent := 0
	var errno syscall.Errno
	err := w.rc.Write(func(fd uintptr) bool {
		for sent < len(w.msgs) {
			n, _, e := syscall.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&w.msgs[sent])), uintptr(len(w.msgs)-sent), 0, 0, 0)
			switch e {
			case 0:
				sent += int(n)
			case syscall.EAGAIN:
				return false // wait until the host reads, within the deadline
			case syscall.EINTR:
			default:
				errno = e
				return true
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	if errno != 0 {
		return errno
	}
	return nil
}
