package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// files lists dir's entries.
func files(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func TestWrite(t *testing.T) {
	errHalfway := errors.New("no space left on device")
	tests := []struct {
		name    string
		old     string // the file before, "" for none
		write   func(w io.Writer) error
		wantErr error
		want    string // the file after
	}{
		{"ShouldCreateTheFile", "", func(w io.Writer) error { _, err := io.WriteString(w, "new"); return err }, nil, "new"},
		{"ShouldReplaceTheFile", "old", func(w io.Writer) error { _, err := io.WriteString(w, "new"); return err }, nil, "new"},
		{"ShouldLeaveTheFileAsItWasOnAFailedWrite", "old", func(w io.Writer) error {
			io.WriteString(w, "ne")
			return errHalfway
		}, errHalfway, "old"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f")
			if tt.old != "" {
				if err := os.WriteFile(path, []byte(tt.old), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := Write(path, tt.write)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Write: %v, want %v", err, tt.wantErr)
			}
			got, err := os.ReadFile(path)
			if err != nil || string(got) != tt.want {
				t.Fatalf("file %q (%v), want %q", got, err, tt.want)
			}
			if fs := files(t, dir); len(fs) != 1 {
				t.Errorf("left in the directory: %q", fs)
			}
			fi, _ := os.Stat(path)
			if tt.wantErr == nil && runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
				t.Errorf("mode %v, want 0600", fi.Mode().Perm())
			}
		})
	}
}

func TestWriteFailsWithoutTheDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := Write(filepath.Join(dir, "missing", "f"), func(io.Writer) error { return nil }); err == nil {
		t.Fatal("no error")
	}
	if fs := files(t, dir); len(fs) != 0 {
		t.Errorf("left in the directory: %q", fs)
	}
}
