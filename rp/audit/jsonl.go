package audit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"iter"
)

// WriteJSONL exports entries, one [Entry.MarshalJSON] line each, each
// ending in a newline. It writes entries as they are, without checking
// them, so that an export shows a damaged store exactly as it is and
// [Verify] can say what is wrong. A slice is passed as slices.Values(s).
func WriteJSONL(w io.Writer, entries iter.Seq[Entry]) error {
	bw := bufio.NewWriter(w)
	for e := range entries {
		b, err := e.MarshalJSON()
		if err != nil {
			return err
		}
		b = append(b, '\n')
		if _, err := bw.Write(b); err != nil {
			return fmt.Errorf("audit: write export: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("audit: write export: %w", err)
	}
	return nil
}

// VerifyOptions are the optional checks of [VerifyOptions.Verify].
type VerifyOptions struct {
	// WantHead, if not empty, is the hash (64 lowercase hex digits) the
	// export must end with: a [VerifyResult.Head] recorded earlier. The
	// chain alone cannot show entries cut from its end; this can.
	WantHead string
}

// Verify checks a JSONL export with no options; see
// [VerifyOptions.Verify].
func Verify(r io.Reader) (VerifyResult, error) {
	return VerifyOptions{}.Verify(r)
}

// Verify reads a JSONL export from r as a stream and checks that it is a
// whole, untouched log starting at Seq 1, and, with WantHead, that it
// ends at that head. Each line must be exactly what [WriteJSONL] writes
// (at most [MaxLineBytes], strict JSON, no unknown keys, no other
// spelling of the same entry; the last newline may be missing) and pass
// [Verifier.Add]. The first failure is returned as a *[VerifyError]
// saying which line and Seq and how ([ErrEdited], [ErrBroken], [ErrGap],
// [ErrMalformed], [ErrHeadMismatch]), with the result for the lines
// before it. Errors reading r, or a malformed WantHead, come back as
// they are.
func (o VerifyOptions) Verify(r io.Reader) (VerifyResult, error) {
	var want Digest
	if o.WantHead != "" {
		var err error
		if want, err = ParseDigest(o.WantHead); err != nil {
			return VerifyResult{}, fmt.Errorf("audit: WantHead: %w", err)
		}
	}
	var v Verifier
	rr := &readRecorder{r: r}
	sc := bufio.NewScanner(rr)
	// The buffer grows to a line and its newline, and no further.
	sc.Buffer(make([]byte, 0, 4096), MaxLineBytes+1)
	sc.Split(splitLines)
	for line := 1; ; line++ {
		if !sc.Scan() {
			switch err := sc.Err(); {
			case errors.Is(err, bufio.ErrTooLong):
				return v.Result(), malformed(line, 0, nil, "line longer than %d bytes", MaxLineBytes)
			case err != nil:
				return v.Result(), fmt.Errorf("audit: read export: %w", err)
			}
			if o.WantHead != "" {
				if err := v.CheckHead(want); err != nil {
					return v.Result(), err
				}
			}
			return v.Result(), nil
		}
		before := v.Result()
		if err := verifyLine(&v, line, sc.Bytes()); err != nil {
			if rr.err != nil {
				// The line may be cut short by the failed read: report
				// the read, not tampering.
				return before, fmt.Errorf("audit: read export: %w", rr.err)
			}
			return before, err
		}
	}
}

// verifyLine checks one JSONL line and adds its entry to v.
func verifyLine(v *Verifier, line int, b []byte) error {
	if len(b) > MaxLineBytes {
		return malformed(line, 0, nil, "line longer than %d bytes", MaxLineBytes)
	}
	var e Entry
	if err := e.UnmarshalJSON(b); err != nil {
		return malformed(line, 0, err, "%s", reason(err))
	}
	if err := v.Add(e); err != nil {
		return err
	}
	// The content verified; now refuse any spelling of it but the one
	// WriteJSONL writes, so that duplicate keys, escapes or spacing
	// cannot show a reader something the hash did not cover.
	if canon, err := e.MarshalJSON(); err != nil || !bytes.Equal(canon, b) {
		return malformed(line, e.Seq, err, "not written as WriteJSONL writes it (spacing, key order, duplicate keys or escapes)")
	}
	return nil
}

// readRecorder remembers the first read error other than io.EOF, which
// bufio.Scanner reports only after handing out the partial line before
// it.
type readRecorder struct {
	r   io.Reader
	err error
}

func (rr *readRecorder) Read(p []byte) (int, error) {
	n, err := rr.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && rr.err == nil {
		rr.err = err
	}
	return n, err
}

func malformed(line int, seq uint64, cause error, format string, args ...any) *VerifyError {
	return &VerifyError{Line: line, Seq: seq, Kind: ErrMalformed, Reason: fmt.Sprintf(format, args...), Err: cause}
}

// splitLines is bufio.ScanLines without its forgiveness: only '\n' ends a
// line, so a '\r' stays in the line and makes it malformed.
func splitLines(data []byte, atEOF bool) (advance int, token []byte, err error) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}
