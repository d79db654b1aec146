package local

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The files of the embedded default in its data directory. keydesk-rp
// serve with no --db and no --secret-file uses the same names in the same
// directory, so that it and the desktop app share one database and one
// secret (SQLite's busy timeout lets both processes write it).
const (
	// DBFile is the SQLite database.
	DBFile = "rp.db"
	// SecretFile holds the server secret as hex (see LoadSecret).
	SecretFile = "rp.secret"
)

// DataDir is where the embedded default keeps DBFile and SecretFile:
// $XDG_DATA_HOME/keydesk, or ~/.local/share/keydesk without it. It only
// names the directory; Start and keydesk-rp create it (0700).
func DataDir() (string, error) {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "keydesk"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("local: data directory: %w", err)
	}
	return filepath.Join(home, ".local", "share", "keydesk"), nil
}

// secretBytes is the size of a new secret: the 32 bytes server.Config
// asks for at least.
const secretBytes = 32

// LoadSecret reads the server secret (at least 32 bytes, as hex) from
// path, creating the file with 32 random bytes, readable by its owner
// only (0600), when it is missing. The secret keys the hashes of
// enrollment codes and derives session tokens: every process serving one
// database must read the same file, and it stays out of the database so
// that a copy of the database alone is no use to a guesser.
func LoadSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		s, cerr := createSecret(path)
		if !errors.Is(cerr, os.ErrExist) {
			return s, cerr
		}
		// Another process (the app and keydesk-rp starting together)
		// created it first: use theirs, once it has written it.
		for range 20 {
			if b, err = os.ReadFile(path); err != nil || len(b) > 0 {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("local: read the secret file: %w", err)
	}
	s, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(s) < secretBytes {
		// Say neither what was read nor why hex failed: either could
		// quote part of the secret.
		return nil, fmt.Errorf("local: secret file %s: want at least %d bytes as hex", path, secretBytes)
	}
	return s, nil
}

// createSecret writes a new secret to path, failing with an error that
// wraps os.ErrExist when the file exists.
func createSecret(path string) ([]byte, error) {
	s := make([]byte, secretBytes)
	rand.Read(s) // never fails (crypto/rand since Go 1.24)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("local: create the secret file: %w", err)
	}
	if _, err := f.WriteString(hex.EncodeToString(s) + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("local: write the secret file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("local: write the secret file: %w", err)
	}
	return s, nil
}
