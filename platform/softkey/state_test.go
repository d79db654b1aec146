package softkey

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func stateConfig(t *testing.T) Config {
	t.Helper()
	return Config{StatePath: filepath.Join(t.TempDir(), "key.state"), StateKey: bytes.Repeat([]byte{0x42}, 32)}
}

func TestStateSurvivesRestart(t *testing.T) {
	cfg := stateConfig(t)
	c := newTestKey(t, cfg)
	mc, err := c.makeCred(makeCredReq("example.com", "alice", true))
	wantStatus(t, err, StatusOK)
	wantStatus(t, c.setPIN(2, "1234"), StatusOK)
	id := credID(t, mc.AuthData)
	ca := c.key.AttestationCA()

	fi, err := os.Stat(cfg.StatePath)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode %v, want 0600", fi.Mode().Perm())
	}
	raw, _ := os.ReadFile(cfg.StatePath)
	if bytes.Contains(raw, []byte("example.com")) || bytes.Contains(raw, []byte("alice")) {
		t.Fatal("state file is not sealed")
	}

	c2 := newTestKey(t, cfg)
	if !bytes.Equal(c2.key.AttestationCA(), ca) {
		t.Fatal("attestation CA changed across restart")
	}
	tok := c2.mustToken(2, "1234", PermGetAssertion, "example.com")
	resp, err := c2.getAssert(withToken(getAssertReq("example.com", id), tok, 2, 6))
	wantStatus(t, err, StatusOK)
	if signCount(resp.AuthData) <= signCount(mc.AuthData) {
		t.Fatal("sign counter went back after restart")
	}
	if len(c2.key.st.Credentials) != 1 {
		t.Fatal("discoverable credential lost")
	}
}

func TestStateRefusesDamagedFile(t *testing.T) {
	tests := []struct {
		name   string
		damage func(path string, cfg *Config)
	}{
		{name: "ShouldRefuseTruncatedFile", damage: func(p string, _ *Config) {
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)/2], 0o600)
		}},
		{name: "ShouldRefuseEmptyFile", damage: func(p string, _ *Config) { os.WriteFile(p, nil, 0o600) }},
		{name: "ShouldRefuseFlippedByte", damage: func(p string, _ *Config) {
			b, _ := os.ReadFile(p)
			b[len(b)-20] ^= 1
			os.WriteFile(p, b, 0o600)
		}},
		{name: "ShouldRefuseForeignFile", damage: func(p string, _ *Config) { os.WriteFile(p, []byte("{}"), 0o600) }},
		{name: "ShouldRefuseWrongKey", damage: func(_ string, cfg *Config) { cfg.StateKey = bytes.Repeat([]byte{1}, 32) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := stateConfig(t)
			if _, err := New(cfg); err != nil {
				t.Fatal(err)
			}
			tt.damage(cfg.StatePath, &cfg)
			before, _ := os.ReadFile(cfg.StatePath)
			_, err := New(cfg)
			if !errors.Is(err, ErrStateCorrupt) {
				t.Fatalf("got %v, want ErrStateCorrupt", err)
			}
			if !strings.Contains(err.Error(), cfg.StatePath) {
				t.Fatalf("error %q does not name the file", err)
			}
			after, _ := os.ReadFile(cfg.StatePath)
			if !bytes.Equal(before, after) {
				t.Fatal("a refused state file was rewritten")
			}
		})
	}
}

func TestStateRequiresKey(t *testing.T) {
	_, err := New(Config{StatePath: filepath.Join(t.TempDir(), "s")})
	if err == nil {
		t.Fatal("a state file without a key was accepted")
	}
}

func TestFailedWriteLeavesStateUnchanged(t *testing.T) {
	dir := t.TempDir()
	cfg := stateConfig(t)
	cfg.StatePath = filepath.Join(dir, "sub", "key.state")
	os.Mkdir(filepath.Dir(cfg.StatePath), 0o700)
	c := newTestKey(t, cfg)
	_, err := c.makeCred(makeCredReq("example.com", "alice", true))
	wantStatus(t, err, StatusOK)

	// Take the directory away: the next write fails.
	os.RemoveAll(filepath.Dir(cfg.StatePath))
	_, err = c.makeCred(makeCredReq("example.com", "bob", true))
	wantStatus(t, err, ErrOther)
	wantStatus(t, c.setPIN(2, "1234"), ErrOther)
	if n := len(c.key.st.Credentials); n != 1 || c.key.pinSet() {
		t.Fatalf("memory diverged from disk: %d credentials, PIN set %v", n, c.key.pinSet())
	}
}
