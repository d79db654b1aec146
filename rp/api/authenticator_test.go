package api_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/keydesk/keydesk/assets"
	"github.com/keydesk/keydesk/rp/api"
)

func dataURL(mediaType string, data []byte) string {
	return "data:" + mediaType + ";base64," + base64.StdEncoding.EncodeToString(data)
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeIcon(t *testing.T) {
	png := readTestdata(t, "icon-32.png")
	svg := []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 8 8"><rect width="8" height="8"/></svg>`)
	softkey, _ := assets.AAGUIDIcon([16]byte{0xef, 0x18, 0x5f, 0x03, 0x0d, 0x9a, 0x49, 0x09, 0x8f, 0xf0, 0x93, 0xc5, 0x35, 0xaa, 0x9e, 0xcd})
	tests := []struct {
		name      string
		in        string
		wantType  string
		wantBytes []byte
	}{
		{"ShouldReadAPNG", dataURL("image/png", png), api.IconPNG, png},
		{"ShouldReadAnSVG", dataURL("image/svg+xml", svg), api.IconSVG, svg},
		{"ShouldReadTheMediaTypeInAnyCase", dataURL("IMAGE/PNG", png), api.IconPNG, png},
		{"ShouldReadTheSoftwareKeysIcon", softkey, api.IconSVG, nil},
		{"ShouldRefuseAnHTTPURL", "https://example.com/icon.png", "", nil},
		{"ShouldRefuseNoComma", "data:image/png;base64", "", nil},
		{"ShouldRefuseJPEG", dataURL("image/jpeg", png), "", nil},
		{"ShouldRefuseHTML", dataURL("text/html", []byte("<svg/>")), "", nil},
		{"ShouldRefuseAPNGLabelledSVG", dataURL("image/svg+xml", png), "", nil},
		{"ShouldRefuseAnSVGLabelledPNG", dataURL("image/png", svg), "", nil},
		{"ShouldRefusePercentEncoding", "data:image/svg+xml," + string(svg), "", nil},
		{"ShouldRefuseBadBase64", "data:image/png;base64,!!!!", "", nil},
		{"ShouldRefuseEmptyData", "data:image/png;base64,", "", nil},
		{"ShouldRefuseAHugePNG", dataURL("image/png", readTestdata(t, "icon-2000x1.png")), "", nil},
		{"ShouldRefuseTooManyBytes", dataURL("image/svg+xml", append(append([]byte("<svg>"), bytes.Repeat([]byte(" "), api.MaxIconBytes)...), "</svg>"...)), "", nil},
		{"ShouldRefuseXMLThatIsNotSVG", dataURL("image/svg+xml", []byte(`<html><svg/></html>`)), "", nil},
		{"ShouldRefuseTwoRoots", dataURL("image/svg+xml", []byte(`<svg/><svg/>`)), "", nil},
		{"ShouldRefuseBrokenXML", dataURL("image/svg+xml", []byte(`<svg><g></svg>`)), "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mt, data, err := api.DecodeIcon(tt.in)
			if tt.wantType == "" {
				if !errors.Is(err, api.ErrBadIcon) || mt != "" || data != nil {
					t.Fatalf("DecodeIcon = %q, %d bytes, %v; want ErrBadIcon", mt, len(data), err)
				}
				return
			}
			if err != nil || mt != tt.wantType {
				t.Fatalf("DecodeIcon = %q, %v; want %q", mt, err, tt.wantType)
			}
			if tt.wantBytes != nil && !bytes.Equal(data, tt.wantBytes) {
				t.Fatal("DecodeIcon returned other bytes")
			}
		})
	}
}

// TestDecodeIconErrorsStayShort: an error quotes at most a little of
// what it was given, so that a hostile service cannot fill a log.
func TestDecodeIconErrorsStayShort(t *testing.T) {
	_, _, err := api.DecodeIcon("data:" + strings.Repeat("x", 10000) + ",AAAA")
	if err == nil {
		t.Fatal("accepted")
	}
	if len(err.Error()) > 200 {
		t.Fatalf("error of %d bytes: %.80v", len(err.Error()), err)
	}
}

func FuzzDecodeIcon(f *testing.F) {
	f.Add(dataURL("image/png", readTestdata(f, "icon-32.png")))
	f.Add(dataURL("image/svg+xml", []byte(`<svg xmlns="http://www.w3.org/2000/svg"/>`)))
	f.Add("data:image/png;base64,")
	f.Add("data:,")
	f.Fuzz(func(t *testing.T, in string) {
		mt, data, err := api.DecodeIcon(in)
		if err != nil {
			if !errors.Is(err, api.ErrBadIcon) || mt != "" || data != nil {
				t.Fatalf("error %v with %q, %d bytes", err, mt, len(data))
			}
			return
		}
		if mt != api.IconPNG && mt != api.IconSVG || len(data) == 0 || len(data) > api.MaxIconBytes {
			t.Fatalf("accepted %q with %d bytes", mt, len(data))
		}
		// What is accepted decodes the same again from its own data URL.
		mt2, data2, err := api.DecodeIcon(dataURL(mt, data))
		if err != nil || mt2 != mt || !bytes.Equal(data, data2) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
