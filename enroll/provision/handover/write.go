package handover

import (
	"fmt"
	"io"

	"github.com/keydesk/keydesk/platform/atomicfile"
)

// Write writes s's page to path atomically (atomicfile.Write): a
// temporary file in the same directory with mode 0600, fsynced, then
// renamed over path (an existing file at path is replaced, a run that is
// resumed redoes a page). On any error nothing is left at path that was
// not there before, and the temporary file is removed.
//
// The directory must exist: creating it here could give a mistyped path
// a directory readable by others. Errors from [Render] are returned as
// they are.
func Write(path string, s Sheet) error {
	var renderErr error
	err := atomicfile.Write(path, func(w io.Writer) error {
		renderErr = Render(w, s)
		return renderErr
	})
	if err != nil && err != renderErr {
		return fmt.Errorf("write handover page: %w", err)
	}
	return err
}
