// Package identity is what the software key says it is (its AAGUID and
// CTAP versions), for programs that describe the key without running it:
// keydesk devices offers the in-process key without linking the key, its
// certificates and their dependencies into every command.
package identity

// AAGUID identifies the software key's model; assets/aaguids names it.
var AAGUID = [16]byte{0xef, 0x18, 0x5f, 0x03, 0x0d, 0x9a, 0x49, 0x09, 0x8f, 0xf0, 0x93, 0xc5, 0x35, 0xaa, 0x9e, 0xcd}

// Versions are the protocol versions authenticatorGetInfo lists; U2F_V2
// is U2F over CTAPHID_MSG.
var Versions = []string{"U2F_V2", "FIDO_2_0", "FIDO_2_1"}
