//go:build !linux

package ctaphid

import "net"

// reportWriter sends reports one datagram at a time where sendmmsg(2) is
// not available.
type reportWriter struct{ c *net.UnixConn }

func newReportWriter(c *net.UnixConn) *reportWriter { return &reportWriter{c: c} }

func (w *reportWriter) write(reports [][]byte) error {
	for _, r := range reports {
		if _, err := w.c.Write(r); err != nil {
			return err
		}
	}
	return nil
}
