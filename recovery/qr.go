package recovery

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"

	// go-qrcode (a required library of the project, DEVELOPERS.md):
	// QR codes in pure Go, as PNG for the GUI and as text for a terminal.
	qrcode "github.com/skip2/go-qrcode"
)

// QR size bounds, in pixels: below the minimum a phone's camera cannot
// read a code of a link this long; above the maximum is no screen's.
const (
	MinQRSize = 128
	MaxQRSize = 4096
)

// qrLevel is the QR code's error correction: Medium (about 15% of the
// code may be unreadable), enough for a screen, and a smaller code than
// the higher levels.
const qrLevel = qrcode.Medium

// ErrQRSize is a QR size outside MinQRSize..MaxQRSize.
var ErrQRSize = fmt.Errorf("recovery: a QR code is %d to %d pixels wide", MinQRSize, MaxQRSize)

// QR returns the QR code of the handoff's URL as a PNG image size pixels
// wide and high: black modules of a whole number of pixels each (crisp
// edges read best), centred, with the quiet zone scanners need. It is
// what the desktop shows; the image holds the handoff's secret, for the
// screen only.
func (h *Handoff) QR(size int) ([]byte, error) {
	if size < MinQRSize || size > MaxQRSize {
		return nil, ErrQRSize
	}
	q, err := h.qr()
	if err != nil {
		return nil, err
	}
	// go-qrcode's own PNG scales modules to fractional widths; the
	// bitmap, quiet zone included, is drawn here instead.
	bits := q.Bitmap()
	n := len(bits)
	ppm := size / n
	if ppm < 1 {
		return nil, ErrQRSize
	}
	img := image.NewPaletted(image.Rect(0, 0, size, size), color.Palette{color.White, color.Black})
	off := (size - ppm*n) / 2
	for y, row := range bits {
		for x, dark := range row {
			if !dark {
				continue
			}
			for py := off + y*ppm; py < off+(y+1)*ppm; py++ {
				for px := off + x*ppm; px < off+(x+1)*ppm; px++ {
					img.Pix[img.PixOffset(px, py)] = 1
				}
			}
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		return nil, fmt.Errorf("recovery: QR code: %w", err)
	}
	return b.Bytes(), nil
}

// QRText returns the QR code as text for a terminal, two rows of modules
// per line in Unicode half blocks. Most terminals draw light text on a
// dark background, which inverts the code: inverse swaps the colours
// back (phones read both, but not every scanner does).
func (h *Handoff) QRText(inverse bool) (string, error) {
	q, err := h.qr()
	if err != nil {
		return "", err
	}
	return q.ToSmallString(inverse), nil
}

// qr encodes the URL.
func (h *Handoff) qr() (*qrcode.QRCode, error) {
	if h.start.URL == "" {
		return nil, errors.New("recovery: QR code: no URL")
	}
	q, err := qrcode.New(h.start.URL, qrLevel)
	if err != nil {
		// go-qrcode's errors do not repeat the content.
		return nil, fmt.Errorf("recovery: QR code: %w", err)
	}
	return q, nil
}
