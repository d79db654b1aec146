package webauthn

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"
)

func mustOrigin(t testing.TB, s string) Origin {
	t.Helper()
	o, err := ParseOrigin(s)
	if err != nil {
		t.Fatalf("ParseOrigin(%q): %v", s, err)
	}
	return o
}

// challenge16 is the bytes 0 to 15, "AAECAwQFBgcICQoLDA0ODw" in base64url.
var challenge16 = []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}

func TestCollectedClientDataJSON(t *testing.T) {
	tests := []struct {
		name string
		cd   CollectedClientData
		want string
	}{
		{
			name: "ShouldSerializeCreateInSpecOrder",
			cd:   CollectedClientData{Type: protocol.CreateCeremony, Challenge: challenge16, Origin: mustOrigin(t, "https://login.example.com")},
			want: `{"type":"webauthn.create","challenge":"AAECAwQFBgcICQoLDA0ODw","origin":"https://login.example.com","crossOrigin":false}`,
		},
		{
			name: "ShouldSerializeGetWithPort",
			cd:   CollectedClientData{Type: protocol.AssertCeremony, Challenge: []byte{0xfb, 0xff, 0xbf}, Origin: mustOrigin(t, "http://localhost:8787")},
			want: `{"type":"webauthn.get","challenge":"-_-_","origin":"http://localhost:8787","crossOrigin":false}`,
		},
		{
			name: "ShouldSerializeIPv6OriginInBrackets",
			cd:   CollectedClientData{Type: protocol.AssertCeremony, Challenge: challenge16, Origin: mustOrigin(t, "http://[::1]:3000")},
			want: `{"type":"webauthn.get","challenge":"AAECAwQFBgcICQoLDA0ODw","origin":"http://[::1]:3000","crossOrigin":false}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.cd.JSON()
			if string(got) != tt.want {
				t.Fatalf("JSON() =\n%s\nwant\n%s", got, tt.want)
			}
			want := sha256.Sum256([]byte(tt.want))
			if !bytes.Equal(tt.cd.Hash(), want[:]) {
				t.Errorf("Hash() is not SHA-256 of the JSON")
			}
			// go-webauthn's server side reads it and accepts it for the
			// challenge and origin it expects.
			var parsed protocol.CollectedClientData
			if err := json.Unmarshal(got, &parsed); err != nil {
				t.Fatalf("go-webauthn cannot read it: %v", err)
			}
			challenge := b64(tt.cd.Challenge)
			if err := parsed.Verify(challenge, tt.cd.Type, []string{tt.cd.Origin.String()}, nil, nil, protocol.TopOriginDefaultVerificationMode, false); err != nil {
				t.Errorf("go-webauthn refuses it: %v", err)
			}
		})
	}
}

func TestCCDToString(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{name: "ShouldCopyPlainASCII", in: "https://example.com:8443", want: `"https://example.com:8443"`},
		{name: "ShouldEscapeQuoteAndBackslash", in: `a"b\c`, want: `"a\"b\\c"`},
		{name: "ShouldEscapeControlsAsLowercaseHex", in: "\x00\x1f\n", want: `"\u0000\u001f\u000a"`},
		{name: "ShouldNotEscapeDelOrHTMLCharacters", in: "\x7f<&>", want: "\"\x7f<&>\""},
		{name: "ShouldCopyNonASCIIAsUTF8", in: "bücher€😀", want: `"bücher€😀"`},
		{name: "ShouldReplaceInvalidUTF8", in: "\xff", want: "\"\uFFFD\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(appendCCDString(nil, tt.in)); got != tt.want {
				t.Errorf("CCDToString(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}
