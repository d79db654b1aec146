package storeopen

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenSQLiteByPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rp.db")
	s, err := Open(t.Context(), "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("no database at %s: %v", path, err)
	}
}

func TestOpenDispatchesByScheme(t *testing.T) {
	tests := []struct {
		name, dsn string
		// wantSub is in the error: which package tried, or what was
		// refused.
		wantSub string
	}{
		// Nothing listens on port 1: the PostgreSQL package tried.
		{"ShouldOpenPostgresURLs", "postgres://u:hunter2@127.0.0.1:1/db?connect_timeout=5", "postgres:"},
		{"ShouldOpenPostgresqlURLs", "postgresql://u:hunter2@127.0.0.1:1/db?connect_timeout=5", "postgres:"},
		{"ShouldRefuseAnUnknownScheme", "mysql://u:hunter2@host/db", `unknown database scheme "mysql"`},
		{"ShouldRefuseNoScheme", "hunter2", "no known scheme"},
		{"ShouldNotEchoASchemeThatIsNoScheme", "u hunter2:x", "no known scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(t.Context(), tt.dsn)
			if err == nil {
				s.Close()
				t.Fatalf("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.wantSub) {
				t.Errorf("Open: %v, want an error containing %q", err, tt.wantSub)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("Open: %v shows the password", err)
			}
		})
	}
}
