// Package handover renders the one-page PDF that gives an employee the
// random PIN IT set on their provisioned security key, and writes it to a
// file no other user can read.
//
// The PIN is printed exactly or not at all: the page uses the PDF core
// fonts, which need no font files but can show only Windows-1252, so a PIN
// with a character outside it, or one a reader could not see or type back,
// is refused with [ErrInvalidPIN] rather than printed wrong. Names and other
// details are shown with "?" in place of such characters, since a
// misspelled name does no harm. No error this package returns contains the
// PIN.
//
// What this package cannot do: the PDF library (github.com/go-pdf/fpdf)
// takes text as Go strings and copies the PIN into its own page buffers and
// into the finished, compressed page, and Go strings cannot be wiped. Those
// copies stay in memory until the garbage collector reclaims them and the
// memory is reused; a core dump or swap taken before then may hold the PIN.
// Render and [Write] do not modify [Sheet.PIN]: the caller wipes it once
// Write returns, and relies on the employee changing the PIN on first use
// (the key is set to require that) to make any leftover copy worthless.
package handover
