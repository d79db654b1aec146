package profile

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// unusualTokens are tokens a store must give back byte for byte.
func unusualTokens() map[string]string {
	var all []byte
	for i := 255; i >= 0; i-- {
		all = append(all, byte(i))
	}
	return map[string]string{
		"NUL bytes":                 "before\x00after\x00",
		"newlines and tabs":         "line1\nline2\r\n\tindented\n",
		"surrounding spaces":        "  padded  ",
		"quotes and shell":          `'"$(rm -rf /)` + "`;|&<>\\",
		"non-ASCII":                 "jeton-été-トークン-🔑-\u202eevil",
		"invalid UTF-8":             "\xff\xfe\x80\xc3",
		"every byte value":          string(all),
		"longest allowed":           rand.Text() + strings.Repeat("x", MaxTokenLength-len(rand.Text())),
		"JSON and keyring prefixes": `{"token":"go-keyring-base64:AAAA"}`,
	}
}

// testTokenStore is what every TokenStore must do; the Memory and the
// Keyring tests both run it. Profile names carry prefix, so that runs
// against one keyring do not see each other's tokens.
func testTokenStore(t *testing.T, s TokenStore, prefix string) {
	name := func(n string) string { return prefix + n }
	// noTokenIn fails if an error of the store quotes a token.
	noTokenIn := func(t *testing.T, err error, tokens ...string) {
		t.Helper()
		for _, tok := range tokens {
			if err != nil && len(tok) >= 4 && strings.Contains(err.Error(), tok) {
				t.Errorf("the error %q contains the token", err)
			}
		}
	}

	t.Run("ShouldReportAMissingTokenAsErrNotFound", func(t *testing.T) {
		if _, err := s.Get(name("never-set")); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get: got %v, want ErrNotFound", err)
		}
		if err := s.Delete(name("never-set")); !errors.Is(err, ErrNotFound) {
			t.Errorf("Delete: got %v, want ErrNotFound", err)
		}
	})

	t.Run("ShouldRoundTripSetGetDelete", func(t *testing.T) {
		p, tok := name("roundtrip"), "tok-"+rand.Text()
		if err := s.Set(p, tok); err != nil {
			t.Fatalf("Set: %v", err)
		}
		got, err := s.Get(p)
		if err != nil || got != tok {
			t.Fatalf("Get: got %q, %v; want the token", got, err)
		}
		if err := s.Delete(p); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if got, err := s.Get(p); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get after Delete: got %q, %v; want ErrNotFound", got, err)
		}
		if err := s.Delete(p); !errors.Is(err, ErrNotFound) {
			t.Errorf("second Delete: got %v, want ErrNotFound", err)
		}
	})

	t.Run("ShouldReplaceOnOverwrite", func(t *testing.T) {
		p := name("overwrite")
		for _, tok := range []string{"first-token", "second-token", "x"} {
			if err := s.Set(p, tok); err != nil {
				t.Fatalf("Set %q: %v", tok, err)
			}
			if got, err := s.Get(p); err != nil || got != tok {
				t.Fatalf("Get after Set %q: got %q, %v", tok, got, err)
			}
		}
		if err := s.Delete(p); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		// One Delete removes the only entry: overwriting did not pile
		// up copies.
		if _, err := s.Get(p); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get after Delete: got %v, want ErrNotFound", err)
		}
	})

	t.Run("ShouldKeepProfilesApart", func(t *testing.T) {
		a, b := name("alpha"), name("beta")
		if err := s.Set(a, "token-a"); err != nil {
			t.Fatal(err)
		}
		if err := s.Set(b, "token-b"); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Get(a); got != "token-a" {
			t.Errorf("Get(%s) = %q, want token-a", a, got)
		}
		if got, _ := s.Get(b); got != "token-b" {
			t.Errorf("Get(%s) = %q, want token-b", b, got)
		}
		if err := s.Delete(a); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(a); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%s) after its Delete: %v, want ErrNotFound", a, err)
		}
		if got, err := s.Get(b); err != nil || got != "token-b" {
			t.Errorf("Get(%s) after deleting %s: got %q, %v; want token-b", b, a, got, err)
		}
		if err := s.Delete(b); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("ShouldMatchProfileNamesIgnoringCase", func(t *testing.T) {
		if err := s.Set(name("Work"), "case-token"); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Get(strings.ToUpper(name("work"))); err != nil || got != "case-token" {
			t.Errorf("Get in upper case: got %q, %v", got, err)
		}
		if err := s.Delete(name("WORK")); err != nil {
			t.Errorf("Delete in upper case: %v", err)
		}
		if _, err := s.Get(name("Work")); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get after Delete: %v, want ErrNotFound", err)
		}
	})

	t.Run("ShouldKeepUnusualBytes", func(t *testing.T) {
		i := 0
		for what, tok := range unusualTokens() {
			i++
			p := name(fmt.Sprintf("bytes%d", i))
			if err := s.Set(p, tok); err != nil {
				t.Errorf("%s: Set: %v", what, err)
				continue
			}
			got, err := s.Get(p)
			if err != nil || got != tok {
				t.Errorf("%s: Get: got %q, %v; want %q", what, got, err, tok)
			}
			if err := s.Delete(p); err != nil {
				t.Errorf("%s: Delete: %v", what, err)
			}
		}
	})

	t.Run("ShouldRefuseBadInputWithoutQuotingTheToken", func(t *testing.T) {
		p := name("refused")
		tooLong := "secret-" + strings.Repeat("s", MaxTokenLength)
		err := s.Set(p, tooLong)
		if !errors.Is(err, ErrInvalidToken) {
			t.Errorf("Set of %d bytes: got %v, want ErrInvalidToken", len(tooLong), err)
		}
		noTokenIn(t, err, tooLong)
		if err := s.Set(p, ""); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("Set of an empty token: got %v, want ErrInvalidToken", err)
		}
		if _, err := s.Get(p); !errors.Is(err, ErrNotFound) {
			t.Errorf("a refused Set stored something: Get gives %v", err)
		}
		const secret = "secret-token-value"
		for _, bad := range []string{"", "has space", "a/b", "keydesk probe", strings.Repeat("n", MaxNameLength+1)} {
			err := s.Set(bad, secret)
			if !errors.Is(err, ErrInvalidName) {
				t.Errorf("Set(%q): got %v, want ErrInvalidName", bad, err)
			}
			noTokenIn(t, err, secret)
			if _, err := s.Get(bad); !errors.Is(err, ErrInvalidName) {
				t.Errorf("Get(%q): got %v, want ErrInvalidName", bad, err)
			}
			if err := s.Delete(bad); !errors.Is(err, ErrInvalidName) {
				t.Errorf("Delete(%q): got %v, want ErrInvalidName", bad, err)
			}
		}
	})
}

func TestMemoryTokenStore(t *testing.T) {
	testTokenStore(t, NewMemory(), "")
	t.Run("ShouldWorkAsZeroValue", func(t *testing.T) {
		var m Memory
		if err := m.Set("work", "tok"); err != nil {
			t.Fatal(err)
		}
		if got, err := m.Get("work"); err != nil || got != "tok" {
			t.Errorf("Get: got %q, %v", got, err)
		}
	})
}

func TestMemoryShouldNotPrintItsTokens(t *testing.T) {
	m := NewMemory()
	const tok = "very-secret-session-token"
	if err := m.Set("work", tok); err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		if s := fmt.Sprintf(verb, m); strings.Contains(s, tok) {
			t.Errorf("fmt %s prints the token: %s", verb, s)
		}
	}
	var store TokenStore = m
	if s := fmt.Sprintf("%v %+v", store, []TokenStore{store}); strings.Contains(s, tok) {
		t.Errorf("fmt of the interface prints the token: %s", s)
	}
}

func TestMemoryShouldBeSafeForConcurrentUse(t *testing.T) {
	m := NewMemory()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := fmt.Sprintf("p%d", i%3)
			for j := range 200 {
				_ = m.Set(p, fmt.Sprintf("t%d", j))
				_, _ = m.Get(p)
				if j%10 == 0 {
					_ = m.Delete(p)
				}
				_ = m.String()
			}
		}()
	}
	wg.Wait()
	for i := range 3 {
		p := fmt.Sprintf("p%d", i)
		if err := m.Set(p, "final"); err != nil {
			t.Fatal(err)
		}
		if got, _ := m.Get(p); got != "final" {
			t.Errorf("Get(%s) = %q after concurrent use", p, got)
		}
	}
}
