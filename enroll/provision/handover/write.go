package handover

import (
	"fmt"
	"os"
	"path/filepath"
)

// Write writes s's page to path atomically: a temporary file in the same
// directory with mode 0600, fsynced, then renamed over path (an existing
// file at path is replaced, a run that is resumed redoes a page). On any
// error nothing is left at path that was not there before, and the
// temporary file is removed.
//
// The directory must exist: creating it here could give a mistyped path
// a directory readable by others. Errors from [Render] are returned as
// they are.
func Write(path string, s Sheet) (err error) {
	dir := filepath.Dir(path)
	// Hidden and named after path, so that a file left by a crash shows
	// what it was; it holds the PIN, so the mode matters from the start,
	// and CreateTemp's is 0600.
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write handover page: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// Said again explicitly, since the mode is the point.
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("write handover page: %w", err)
	}
	if err := Render(f, s); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write handover page: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write handover page: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write handover page: %w", err)
	}
	// Make the rename itself durable. Not every system can sync a
	// directory (Windows cannot), and the page is complete either way, so
	// a failure here is not reported.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
