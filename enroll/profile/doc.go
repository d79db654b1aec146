// Package profile keeps the relying parties (RPs) Keydesk can talk to and
// the session each one granted: a [Set] of named [Profile]s in a JSON file
// in the user's configuration directory, and session tokens in the
// operating system's keyring through a [TokenStore], never in that file.
//
// A profile's origin and RP ID are checked exactly as enroll/webauthn
// checks them during a ceremony, so a profile that loads is one Keydesk
// can use; a file that does not check out is refused with a clear error
// and left as it is.
package profile
