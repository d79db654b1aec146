package handover

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-pdf/fpdf"
)

// Sheet is what one person's handover page says.
type Sheet struct {
	User        string    // the account name, e.g. "alice"
	DisplayName string    // optional, e.g. "Alice Liddell"
	Service     string    // the service's origin, e.g. "https://login.example.com"
	KeyModel    string    // e.g. "YubiKey 5 NFC"; may be ""
	Nickname    string    // the key's nickname at the service; may be ""
	AAGUID      string    // dashed UUID; may be ""
	Batch       string    // provisioning batch name; may be ""
	Issued      time.Time // when the key was set up; the zero time leaves the line out
	// MinPINLength is the PIN length the key will require of the new PIN
	// (0: not shown), so that the employee's first choice is not refused.
	MinPINLength int
	PIN          []byte // the PIN, UTF-8; never copied into an error
}

// PIN limits from CTAP 2.1 §6.5.1 (PIN composition requirements): a PIN
// outside them cannot be the PIN of any key, so printing it would hand the
// employee a PIN that does not work.
const (
	minPINCodePoints = 4
	maxPINBytes      = 63
)

var (
	// ErrInvalidPIN is a Sheet.PIN that cannot be printed exactly: empty,
	// shorter than 4 characters or longer than 63 bytes, not UTF-8, or with
	// a character Windows-1252 lacks or a reader could not see (spaces,
	// control and format characters). The wrapping message says which, but
	// never which character.
	ErrInvalidPIN = errors.New("the PIN cannot be printed exactly")
	// ErrIncompleteSheet is a Sheet without a User or a Service: a page
	// that does not say whose key it is or where it works can be handed to
	// the wrong person.
	ErrIncompleteSheet = errors.New("the sheet has no user or no service")
	// ErrDoesNotFit is a Sheet whose details are too long for one page;
	// a second page could be separated from the first.
	ErrDoesNotFit = errors.New("the sheet does not fit on one page")
)

// Page geometry, in millimetres on A4 (210 × 297).
const (
	margin     = 20.0
	pageHeight = 297.0
)

// Render writes s as a one-page PDF (A4) to w.
//
// Nothing is written to w if the page cannot be made; an error from w
// itself may leave part of the page written. Errors wrap [ErrInvalidPIN],
// [ErrIncompleteSheet] or [ErrDoesNotFit] for a sheet that cannot be
// printed.
func Render(w io.Writer, s Sheet) error {
	if strings.TrimSpace(s.User) == "" || strings.TrimSpace(s.Service) == "" {
		return fmt.Errorf("render handover page: %w", ErrIncompleteSheet)
	}
	pdf := fpdf.New("P", "mm", "A4", "")
	// The core fonts' encoding; its translator maps each Windows-1252
	// character to its byte and anything else to '.', indistinguishable
	// from a real '.', so cp1252.has asks about one character at a time.
	enc := cp1252(pdf.UnicodeTranslatorFromDescriptor(""))
	if err := pdf.Error(); err != nil {
		return fmt.Errorf("render handover page: %w", err)
	}
	// Check the PIN before the page holds it, so that no fpdf error can
	// ever be about the PIN's text.
	if err := checkPIN(s.PIN, enc); err != nil {
		return fmt.Errorf("render handover page: %w", err)
	}
	p := page{pdf: pdf, enc: enc}
	if err := p.build(s); err != nil {
		return fmt.Errorf("render handover page: %w", err)
	}
	if err := pdf.Output(w); err != nil {
		return fmt.Errorf("render handover page: %w", err)
	}
	return nil
}

// checkPIN reports why pin cannot be printed exactly. It decodes pin in
// place rather than making a string of it, which would be one more copy no
// one can wipe; only single characters go through the translator.
func checkPIN(pin []byte, enc cp1252) error {
	if len(pin) > maxPINBytes {
		return fmt.Errorf("the PIN is longer than %d bytes: %w", maxPINBytes, ErrInvalidPIN)
	}
	if !utf8.Valid(pin) {
		return fmt.Errorf("the PIN is not valid UTF-8: %w", ErrInvalidPIN)
	}
	if n := utf8.RuneCount(pin); n < minPINCodePoints {
		return fmt.Errorf("the PIN is shorter than %d characters: %w", minPINCodePoints, ErrInvalidPIN)
	}
	for i := 0; i < len(pin); {
		r, size := utf8.DecodeRune(pin[i:])
		i += size
		if !visible(r) {
			return fmt.Errorf("the PIN has a space or an invisible character: %w", ErrInvalidPIN)
		}
		if !enc.has(r) {
			return fmt.Errorf("the PIN has a character the page's font cannot show: %w", ErrInvalidPIN)
		}
	}
	return nil
}

// visible reports whether r prints as something a reader can see and type
// back; a space would also end the "PIN: (\S+)" a scanner looks for.
func visible(r rune) bool {
	return unicode.IsGraphic(r) && !unicode.IsSpace(r)
}

// cp1252 is fpdf's translator to Windows-1252, the core fonts' encoding.
type cp1252 func(string) string

// has reports whether the core fonts can show r.
func (e cp1252) has(r rune) bool {
	return r < 0x80 || e(string(r)) != "."
}

// text translates s for the core fonts, putting "?" where the translator
// would silently put '.', and a space for a line break, which a name or an
// origin never needs and which would break the layout.
func (e cp1252) text(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			b.WriteByte(' ')
		case (r != ' ' && !unicode.IsGraphic(r)) || !e.has(r):
			b.WriteByte('?')
		case r < 0x80:
			b.WriteByte(byte(r))
		default:
			b.WriteString(e(string(r)))
		}
	}
	return b.String()
}

// page lays out one Sheet on pdf.
type page struct {
	pdf *fpdf.Fpdf
	enc cp1252
}

// build draws s and returns fpdf's error, if any.
func (p page) build(s Sheet) error {
	pdf := p.pdf
	pdf.SetMargins(margin, margin, margin)
	// One page, always: rather than let fpdf start a second page, build
	// checks where the text ended.
	pdf.SetAutoPageBreak(false, margin)
	pdf.SetTitle("Your security key", true)
	pdf.SetCreator("Keydesk", true)
	if !s.Issued.IsZero() {
		// Makes the file depend only on the sheet, not on when it was
		// rendered.
		pdf.SetCreationDate(s.Issued)
		pdf.SetModificationDate(s.Issued)
	}
	pdf.AddPage()
	width := 210 - 2*margin

	pdf.SetFont("Helvetica", "B", 24)
	pdf.CellFormat(width, 12, p.enc.text("Your security key"), "", 1, "L", false, 0, "")
	pdf.SetFont("Helvetica", "", 14)
	who := s.User
	if s.DisplayName != "" {
		who = s.DisplayName + " (" + s.User + ")"
	}
	pdf.MultiCell(width, 7, p.enc.text("For "+who), "", "L", false)
	pdf.Ln(4)

	pdf.SetFont("Helvetica", "", 11)
	for _, line := range details(s) {
		pdf.MultiCell(width, 6, p.enc.text(line), "", "L", false)
	}
	pdf.Ln(6)

	// Report a failure so far as itself, not as the PIN line's.
	if err := pdf.Error(); err != nil {
		return err
	}
	if err := p.pin(s.PIN, width); err != nil {
		return err
	}
	pdf.Ln(8)

	pdf.SetFont("Helvetica", "B", 13)
	pdf.CellFormat(width, 8, p.enc.text("What to do"), "", 1, "L", false, 0, "")
	pdf.SetFont("Helvetica", "", 11)
	for i, step := range instructions(s.MinPINLength) {
		pdf.CellFormat(8, 6, strconv.Itoa(i+1)+".", "", 0, "L", false, 0, "")
		pdf.MultiCell(width-8, 6, p.enc.text(step), "", "L", false)
		pdf.Ln(1)
	}

	if s.AAGUID != "" {
		pdf.Ln(6)
		pdf.SetFont("Helvetica", "", 8)
		pdf.SetTextColor(100, 100, 100)
		pdf.MultiCell(width, 4, p.enc.text("For the helpdesk: key model ID (AAGUID) "+s.AAGUID), "", "L", false)
	}

	if err := pdf.Error(); err != nil {
		return err
	}
	if pdf.PageCount() != 1 || pdf.GetY() > pageHeight-margin {
		return ErrDoesNotFit
	}
	return nil
}

// details lists the lines that say which key this is, leaving out what
// the sheet does not know.
func details(s Sheet) []string {
	lines := []string{"Service: " + s.Service}
	var key []string
	for _, v := range []string{s.KeyModel, s.Nickname} {
		if v != "" {
			key = append(key, v)
		}
	}
	if len(key) > 0 {
		lines = append(lines, "Key: "+strings.Join(key, " — "))
	}
	if s.Batch != "" {
		lines = append(lines, "Batch: "+s.Batch)
	}
	if !s.Issued.IsZero() {
		lines = append(lines, "Issued: "+s.Issued.Format("2 Jan 2006"))
	}
	return lines
}

// instructions are the steps for someone who has never used a security
// key. None of them says "PIN:", so the PIN line stays the only match for
// a scanner looking for it.
func instructions(minPINLength int) []string {
	change := "The first time, you will be asked to choose a new PIN of your own."
	if minPINLength > 0 {
		change += fmt.Sprintf(" It must be at least %d characters long.", minPINLength)
	}
	return []string{
		"Plug the security key into your computer.",
		"When you are asked for the key's PIN, type the PIN shown above.",
		change,
		"Keep this sheet private: do not show it to anyone or leave it lying around. Destroy it (shred it) once you have changed the PIN.",
		"If you lose the key, contact the helpdesk straight away.",
	}
}

// pin draws the PIN line, in Courier, where 0 and O, 1, l and I look
// different, at the largest size up to 28 pt that fits the width. checkPIN
// has already accepted pin, so it translates without loss.
func (p page) pin(pin []byte, width float64) error {
	pdf := p.pdf
	// The PIN becomes a whole string only here, because fpdf takes
	// nothing else.
	line := "PIN: " + p.enc.text(string(pin))
	const pad = 4.0 // mm, inside the box on each side
	pdf.SetFont("Courier", "B", 1)
	size := math.Min(28, (width-2*pad)/pdf.GetStringWidth(line))
	pdf.SetFont("Courier", "B", size)
	const mmPerPt = 25.4 / 72
	h := math.Max(16, size*mmPerPt*1.8) // room above and below the text
	pdf.SetLineWidth(0.6)
	pdf.CellFormat(width, h, line, "1", 1, "C", false, 0, "")
	// fpdf errors name no text today; should that change, a failure here
	// must still not carry the PIN.
	if pdf.Err() {
		return errors.New("could not draw the PIN line")
	}
	return nil
}
