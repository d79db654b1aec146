// Package atomicfile replaces files whole: a reader, or the file after a
// crash, is either the old file or the new one, never a mix, and the file
// is readable by its owner only from its first byte. Keydesk's secrets and
// records on disk (the profiles, the software key's sealed state, the PIN
// pages and results of a provisioning run) are written this way.
package atomicfile

import (
	"io"
	"os"
	"path/filepath"
)

// Write replaces the file at path with what write writes, mode 0600: into
// a temporary file in the same directory (hidden, named after path, so
// that one a crash leaves shows what it was), which is synced and then
// renamed over path. On any error the temporary file is removed and path
// is as it was; write's own error is returned as it is. The directory
// must exist.
func Write(path string, write func(w io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// CreateTemp makes the file 0600 already; said again, since the mode
	// is the point.
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if err := write(f); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	// Make the rename itself durable. Not every system can sync a
	// directory (Windows cannot), and the new file is complete either
	// way, so a failure here is not reported.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
