package api

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"image"
	_ "image/png" // the PNG decoder, for DecodeIcon's check of a PNG icon
	"io"
	"strings"
)

// Authenticator describes an authenticator model, by its AAGUID: the
// answer of GET /v1/authenticators/{aaguid}. Clients show Name and the
// icon beside a key, so that people tell their keys apart at a glance.
type Authenticator struct {
	// AAGUID is the model's identifier, a dashed lower-case UUID.
	AAGUID string `json:"aaguid"`
	// Name is the model's name, such as "YubiKey 5 Series with NFC".
	Name string `json:"name"`
	// Icon and IconDark are the model's pictures for light and dark
	// backgrounds: data: URLs (RFC 2397) that [DecodeIcon] accepts, or
	// empty when the service has none. They come from the FIDO Metadata
	// Service statement of the model (its icon and iconDark).
	Icon     string `json:"icon,omitempty"`
	IconDark string `json:"iconDark,omitempty"`
	// Source says where the name comes from: "metadata" (the FIDO
	// Metadata Service BLOB the service loaded) or "builtin" (the names
	// the service ships with).
	Source string `json:"source"`
}

// Authenticators is the answer of GET /v1/authenticators: every model the
// service can name, sorted by AAGUID.
type Authenticators struct {
	Authenticators []Authenticator `json:"authenticators"`
}

// The values of [Authenticator.Source].
const (
	SourceMetadata = "metadata"
	SourceBuiltin  = "builtin"
)

// Limits of an icon [DecodeIcon] accepts. FIDO metadata icons are small
// pictures (a few kilobytes, a few dozen pixels a side); these bounds
// leave room for any real one and keep a hostile one from costing
// memory or time.
const (
	MaxIconBytes = 128 << 10 // decoded
	MaxIconSide  = 1024      // pixels, PNG
)

// Media types of an icon.
const (
	IconPNG = "image/png"
	IconSVG = "image/svg+xml"
)

// ErrBadIcon is returned, wrapped, by [DecodeIcon] for an icon it does
// not accept: a caller shows no picture rather than a broken one.
var ErrBadIcon = errors.New("bad icon")

// DecodeIcon reads an icon data: URL: "data:image/png;base64,..." or
// "data:image/svg+xml;base64,..." (the forms FIDO metadata uses), and
// returns its media type and bytes. The picture is checked, not only its
// label: a PNG must decode its header and be at most MaxIconSide pixels
// a side, an SVG must be XML whose root element is svg. Anything else,
// or more than MaxIconBytes, is ErrBadIcon.
func DecodeIcon(dataURL string) (mediaType string, data []byte, err error) {
	rest, ok := strings.CutPrefix(dataURL, "data:")
	if !ok {
		return "", nil, fmt.Errorf("%w: not a data: URL", ErrBadIcon)
	}
	header, payload, ok := strings.Cut(rest, ",")
	if !ok {
		return "", nil, fmt.Errorf("%w: no data", ErrBadIcon)
	}
	params := strings.Split(header, ";")
	mediaType = strings.ToLower(strings.TrimSpace(params[0]))
	if mediaType != IconPNG && mediaType != IconSVG {
		return "", nil, fmt.Errorf("%w: media type %q is neither PNG nor SVG", ErrBadIcon, truncate(mediaType, 40))
	}
	if params[len(params)-1] != "base64" {
		return "", nil, fmt.Errorf("%w: not base64", ErrBadIcon)
	}
	if base64.StdEncoding.DecodedLen(len(payload)) > MaxIconBytes+3 {
		return "", nil, fmt.Errorf("%w: larger than %d bytes", ErrBadIcon, MaxIconBytes)
	}
	data, err = base64.StdEncoding.DecodeString(payload)
	if err != nil {
		return "", nil, fmt.Errorf("%w: base64: %v", ErrBadIcon, err)
	}
	if len(data) == 0 || len(data) > MaxIconBytes {
		return "", nil, fmt.Errorf("%w: %d bytes", ErrBadIcon, len(data))
	}
	switch mediaType {
	case IconPNG:
		cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
		if err != nil || format != "png" {
			return "", nil, fmt.Errorf("%w: not a PNG image", ErrBadIcon)
		}
		if cfg.Width < 1 || cfg.Height < 1 || cfg.Width > MaxIconSide || cfg.Height > MaxIconSide {
			return "", nil, fmt.Errorf("%w: %d×%d pixels", ErrBadIcon, cfg.Width, cfg.Height)
		}
	case IconSVG:
		if err := checkSVG(data); err != nil {
			return "", nil, fmt.Errorf("%w: %v", ErrBadIcon, err)
		}
	}
	return mediaType, data, nil
}

// checkSVG checks that data is well-formed XML whose root element is an
// SVG svg element.
func checkSVG(data []byte) error {
	d := xml.NewDecoder(bytes.NewReader(data))
	root := ""
	depth := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("SVG: %v", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				if root != "" {
					return errors.New("SVG: more than one root element")
				}
				root = t.Name.Local
			}
			depth++
		case xml.EndElement:
			depth--
		}
	}
	if root != "svg" {
		return errors.New("SVG: the root element is not svg")
	}
	return nil
}

// truncate cuts s to at most n bytes, for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
