package profile

import (
	"os"
	"path/filepath"
)

// writeAndSync writes data to f and flushes it to disk. It is a variable
// so that a test can make the write fail halfway.
var writeAndSync = func(f *os.File, data []byte) error {
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.Sync()
}

// writeFileAtomic replaces path with data, mode 0600, so that readers and
// a crash see either the old file or the new one, never a mix: the data
// goes to a temporary file in the same directory, which is synced and
// then renamed over path. On failure the temporary file is removed and
// path is untouched.
func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
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
	// CreateTemp makes the file 0600 already; say so explicitly, since
	// the mode is the point.
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if err := writeAndSync(f, data); err != nil {
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
