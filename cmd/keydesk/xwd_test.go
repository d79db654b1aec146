//go:build !nogui

package main

import (
	"encoding/binary"
	"image/color"
	"testing"
)

// xwd builds an XWD file as Xvfb writes it: a 100-byte header and a
// window name, ncolors colour entries, then 32-bit pixels.
func xwd(width, height int, pixel func(x, y int) uint32) []byte {
	const header, ncolors = 104, 2
	b := make([]byte, header+ncolors*12+width*height*4)
	put := func(i, v int) { binary.BigEndian.PutUint32(b[i*4:], uint32(v)) }
	put(0, header)
	put(1, 7)  // version
	put(2, 2)  // ZPixmap
	put(3, 24) // depth
	put(4, width)
	put(5, height)
	put(7, 0) // LSBFirst
	put(11, 32)
	put(12, width*4)
	put(19, ncolors)
	start := header + ncolors*12
	for y := range height {
		for x := range width {
			binary.LittleEndian.PutUint32(b[start+(y*width+x)*4:], pixel(x, y))
		}
	}
	return b
}

func TestDecodeXWDAndCrop(t *testing.T) {
	// A 3x2 window at (2, 1) on a black 6x4 screen.
	b := xwd(6, 4, func(x, y int) uint32 {
		if x >= 2 && x < 5 && y >= 1 && y < 3 {
			return 0x00112233
		}
		return 0
	})
	img, err := decodeXWD(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := img.RGBAAt(2, 1); got != (color.RGBA{0x11, 0x22, 0x33, 0xff}) {
		t.Errorf("pixel (2,1) = %v", got)
	}
	if r := cropToContent(img).Bounds(); r.Min.X != 2 || r.Min.Y != 1 || r.Dx() != 3 || r.Dy() != 2 {
		t.Errorf("cropped to %v, want the 3x2 window at (2,1)", r)
	}
}

func TestDecodeXWDRefusesWhatItCannotRead(t *testing.T) {
	good := xwd(2, 2, func(int, int) uint32 { return 1 })
	for name, b := range map[string][]byte{
		"ShouldRefuseAShortHeader":    good[:40],
		"ShouldRefuseTruncatedPixels": good[:len(good)-1],
		"ShouldRefuseAnotherVersion": func() []byte {
			c := append([]byte(nil), good...)
			c[7] = 6
			return c
		}(),
		"ShouldRefuse24BitPixels": func() []byte {
			c := append([]byte(nil), good...)
			binary.BigEndian.PutUint32(c[44:], 24)
			return c
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := decodeXWD(b); err == nil {
				t.Error("decoded")
			}
		})
	}
}

func FuzzDecodeXWD(f *testing.F) {
	f.Add(xwd(2, 2, func(int, int) uint32 { return 0xffffff }))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if img, err := decodeXWD(b); err == nil {
			cropToContent(img)
		}
	})
}
