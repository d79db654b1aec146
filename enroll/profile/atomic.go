package profile

import (
	"io"
	"os"
	"path/filepath"

	"github.com/keydesk/keydesk/platform/atomicfile"
)

// writeData writes data to w. It is a variable so that a test can make
// the write fail halfway.
var writeData = func(w io.Writer, data []byte) error {
	_, err := w.Write(data)
	return err
}

// writeFileAtomic replaces path with data, mode 0600, creating its
// directory (0700) if needed: readers and a crash see either the old file
// or the new one, never a mix (atomicfile.Write).
func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(path, func(w io.Writer) error { return writeData(w, data) })
}
