// Package stacktest drives the software key through the real stack: the
// unmodified libfido2 (through go-libfido2 and the fido2-tools binaries),
// the vhid LD_PRELOAD shim, a unix socket, CTAPHID and the CTAP2 engine.
// Its tests check that nothing on that path can tell the key from hardware,
// and its benchmarks measure what the transport costs.
package stacktest
