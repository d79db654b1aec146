package provision

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestNewPIN(t *testing.T) {
	tests := []struct {
		name     string
		n        int
		alphabet Alphabet
		wantErr  bool
	}{
		{"ShouldDrawEightDigits", 8, Digits, false},
		{"ShouldDrawTheShortestPIN", 4, Digits, false},
		{"ShouldDrawTheLongestPIN", 63, Alphanumeric, false},
		{"ShouldRefuseThreeCharacters", 3, Digits, true},
		{"ShouldRefuseSixtyFourCharacters", 64, Digits, true},
		{"ShouldRefuseAOneCharacterAlphabet", 8, "7", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPIN(tt.n, tt.alphabet)
			if tt.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Len() != tt.n || strings.Trim(string(p.Bytes()), string(tt.alphabet)) != "" {
				t.Fatalf("PIN of %d characters outside the alphabet", p.Len())
			}
		})
	}
}

// TestPINsAreUniform draws many characters and checks each of the
// alphabet's comes up about as often: a modulo bias or a fixed seed would
// show.
func TestPINsAreUniform(t *testing.T) {
	counts := map[byte]int{}
	const draws = 2000
	for range draws {
		p, err := NewPIN(10, Alphanumeric)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range p.Bytes() {
			counts[c]++
		}
	}
	want := float64(draws*10) / float64(len(Alphanumeric))
	for _, c := range []byte(Alphanumeric) {
		// ±15% is more than 5 standard deviations at 800 expected.
		if got := float64(counts[c]); got < want*0.85 || got > want*1.15 {
			t.Errorf("%q drawn %v times, want about %v", c, got, want)
		}
	}
	if len(counts) != len(Alphanumeric) {
		t.Errorf("%d distinct characters, want %d", len(counts), len(Alphanumeric))
	}
}

// TestPINNeverPrints: a PIN in a log line, an error, JSON or any fmt verb
// shows as [PIN].
func TestPINNeverPrints(t *testing.T) {
	p, err := NewPIN(12, Digits)
	if err != nil {
		t.Fatal(err)
	}
	secret := string(p.Bytes())
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("provisioned", "pin", p)
	j, _ := json.Marshal(struct{ PIN *PIN }{p})
	outs := []string{
		fmt.Sprint(p), fmt.Sprintf("%v %+v %#v %s %q %x %X %d", p, p, p, p, p, p, p, p),
		fmt.Errorf("set %v: failed", p).Error(), logs.String(), string(j),
	}
	for _, out := range outs {
		if strings.Contains(out, secret) || !strings.Contains(out, "[PIN]") {
			t.Errorf("printed %q", out)
		}
	}
}

// TestWipeBlanksTheRevealedString: the string handed to a key shares the
// PIN's bytes, so Wipe blanks it too.
func TestWipeBlanksTheRevealedString(t *testing.T) {
	p, err := NewPIN(8, Digits)
	if err != nil {
		t.Fatal(err)
	}
	b := p.Bytes()
	s := p.reveal()
	if s != string(b) {
		t.Fatal("reveal differs from the PIN")
	}
	p.Wipe()
	if !p.Wiped() || p.reveal() != "" {
		t.Fatal("not wiped")
	}
	if !bytes.Equal(b, make([]byte, 8)) || s != string(make([]byte, 8)) {
		t.Fatalf("after Wipe the bytes are %v and the revealed string %q", b, s)
	}
}

func TestParseAlphabet(t *testing.T) {
	for name, want := range map[string]Alphabet{"": Digits, "digits": Digits, "alphanumeric": Alphanumeric} {
		got, err := ParseAlphabet(name)
		if err != nil || got != want || (name != "" && got.Name() != name) {
			t.Errorf("ParseAlphabet(%q) = %q, %v", name, got, err)
		}
	}
	if _, err := ParseAlphabet("emoji"); err == nil {
		t.Error("an unknown alphabet was accepted")
	}
}
