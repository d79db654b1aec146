// Package clibench measures the keydesk commands as whole processes
// against fido2-token doing the same on the same software key.
package clibench
