//go:build !nogui

package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"os"
)

// xvfbScreen reads the screen of an Xvfb started with -fbdir, which keeps
// its framebuffer in dir/Xvfb_screen0 as an XWD image, and crops it to
// what is drawn (the root window is black): the window, as the X server
// shows it.
func xvfbScreen(dir string) (image.Image, error) {
	b, err := os.ReadFile(dir + "/Xvfb_screen0")
	if err != nil {
		return nil, err
	}
	img, err := decodeXWD(b)
	if err != nil {
		return nil, err
	}
	return cropToContent(img), nil
}

// decodeXWD decodes an X Window Dump of a 24- or 32-bit TrueColor
// ZPixmap, the format Xvfb keeps its screens in.
func decodeXWD(b []byte) (*image.RGBA, error) {
	if len(b) < 100 {
		return nil, errors.New("xwd: short header")
	}
	u := func(i int) int { return int(binary.BigEndian.Uint32(b[i*4:])) }
	headerSize, version, format := u(0), u(1), u(2)
	if headerSize < 100 || headerSize > len(b) || u(19) > len(b) {
		return nil, errors.New("xwd: bad header size or colour count")
	}
	width, height, byteOrder := u(4), u(5), u(7)
	bpp, bytesPerLine, ncolors := u(11), u(12), u(19)
	if version != 7 || format != 2 || bpp != 32 {
		return nil, fmt.Errorf("xwd: version %d, format %d, %d bits a pixel: want a version 7 ZPixmap of 32 bits", version, format, bpp)
	}
	start := headerSize + ncolors*12
	const maxSide = 1 << 15 // more than any screen, and no product overflows
	if width <= 0 || height <= 0 || width > maxSide || height > maxSide || bytesPerLine < width*4 || bytesPerLine > 4*maxSide ||
		start < 0 || start+height*bytesPerLine > len(b) {
		return nil, errors.New("xwd: the pixels do not fit the file")
	}
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	for y := range height {
		row := b[start+y*bytesPerLine:]
		for x := range width {
			p := row[x*4 : x*4+4]
			var v uint32
			if byteOrder == 0 { // LSBFirst
				v = binary.LittleEndian.Uint32(p)
			} else {
				v = binary.BigEndian.Uint32(p)
			}
			img.SetRGBA(x, y, color.RGBA{R: uint8(v >> 16), G: uint8(v >> 8), B: uint8(v), A: 0xff})
		}
	}
	return img, nil
}

// cropToContent crops img to the bounds of its pixels that are not black.
func cropToContent(img *image.RGBA) image.Image {
	r := image.Rectangle{}
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			if c := img.RGBAAt(x, y); c.R|c.G|c.B != 0 {
				r = r.Union(image.Rect(x, y, x+1, y+1))
			}
		}
	}
	if r.Empty() {
		return img
	}
	return img.SubImage(r)
}
