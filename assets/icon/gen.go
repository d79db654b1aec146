//go:build ignore

// Command gen draws Keydesk's icon (icon.png, 512x512): a key on a blue
// rounded square. Run: go run ./assets/icon/gen.go (from the repository).
package main

import (
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
)

func main() {
	const n = 512
	img := image.NewNRGBA(image.Rect(0, 0, n, n))
	blue := color.NRGBA{0x1f, 0x5f, 0xd6, 0xff}
	white := color.NRGBA{0xff, 0xff, 0xff, 0xff}
	// cover reports, with 4x4 supersampling, how much of pixel (x,y) in
	// is inside shape.
	cover := func(x, y int, in func(fx, fy float64) bool) float64 {
		c := 0
		for i := range 4 {
			for j := range 4 {
				if in(float64(x)+(float64(i)+0.5)/4, float64(y)+(float64(j)+0.5)/4) {
					c++
				}
			}
		}
		return float64(c) / 16
	}
	rounded := func(fx, fy float64) bool {
		const m, r = 24.0, 96.0
		cx := math.Max(m+r, math.Min(n-m-r, fx))
		cy := math.Max(m+r, math.Min(n-m-r, fy))
		return fx >= m && fx <= n-m && fy >= m && fy <= n-m && math.Hypot(fx-cx, fy-cy) <= r
	}
	key := func(fx, fy float64) bool {
		// The bow: a ring at the left.
		d := math.Hypot(fx-170, fy-256)
		if d <= 92 && d >= 44 {
			return true
		}
		// The shaft and two teeth.
		if fx >= 240 && fx <= 430 && fy >= 236 && fy <= 276 {
			return true
		}
		if fx >= 360 && fx <= 392 && fy >= 276 && fy <= 336 {
			return true
		}
		return fx >= 406 && fx <= 430 && fy >= 276 && fy <= 318
	}
	for y := range n {
		for x := range n {
			bg := cover(x, y, rounded)
			fg := cover(x, y, key)
			mix := func(a, b uint8, t float64) uint8 { return uint8(float64(a)*(1-t) + float64(b)*t + 0.5) }
			c := color.NRGBA{mix(blue.R, white.R, fg), mix(blue.G, white.G, fg), mix(blue.B, white.B, fg), uint8(255*bg + 0.5)}
			img.SetNRGBA(x, y, c)
		}
	}
	f, err := os.Create("assets/icon/icon.png")
	if err != nil {
		panic(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		panic(err)
	}
}
