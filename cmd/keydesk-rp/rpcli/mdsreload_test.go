//go:build unix

package rpcli

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/keydesk/keydesk/rp/mds/mdstest"
	"github.com/keydesk/keydesk/rp/rptest"
)

// TestServeReloadsTheMetadataBLOB replaces the --mds file under a running
// server: the new BLOB is in use (its nextUpdate in /readyz) without a
// restart, when the file changes and on SIGHUP; a broken BLOB leaves the
// last good one in use.
func TestServeReloadsTheMetadataBLOB(t *testing.T) {
	dir := t.TempDir()
	pki := mdstest.NewPKI(t, "reload", time.Now().Add(24*time.Hour))
	root := filepath.Join(dir, "root.pem")
	if err := os.WriteFile(root, pki.RootPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	blobFile := filepath.Join(dir, "blob.jwt")
	day := func(months int) string { return time.Now().AddDate(0, months, 0).Format(time.DateOnly) }
	put := func(months int) {
		t.Helper()
		blob := mdstest.Sign(t, pki.SignerKey, map[string]any{"x5c": pki.X5C()}, mdstest.Payload(40+months, time.Now().AddDate(0, months, 0)))
		tmp := blobFile + ".new"
		if err := os.WriteFile(tmp, blob, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, blobFile); err != nil {
			t.Fatal(err)
		}
	}
	// serve starts a server on a fresh copy of the BLOB file valid for
	// a month, and returns a reader of its /readyz nextUpdate.
	serve := func(t *testing.T, checkEvery string) func() string {
		put(1)
		url := serveInProcess(t, "--db", "sqlite:"+filepath.Join(t.TempDir(), "rp.db"), "--origin", origin,
			"--mds", blobFile, "--mds-root", root, "--mds-check-interval", checkEvery)
		c := &rptest.Client{BaseURL: url}
		return func() string {
			var got struct {
				MDSNextUpdate time.Time `json:"mdsNextUpdate"`
			}
			if _, err := c.Do("GET", "/readyz", nil, &got); err != nil {
				t.Fatal(err)
			}
			return got.MDSNextUpdate.Format(time.DateOnly)
		}
	}
	waitFor := func(t *testing.T, nextUpdate func() string, what, want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for got := nextUpdate(); got != want; got = nextUpdate() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: nextUpdate %s, want %s", what, got, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	t.Run("WhenTheFileChanges", func(t *testing.T) {
		nextUpdate := serve(t, "50ms")
		waitFor(t, nextUpdate, "at start", day(1))
		put(2)
		waitFor(t, nextUpdate, "after the file changed", day(2))
		// A broken BLOB is refused; the last good one stays.
		if err := os.WriteFile(blobFile, []byte("not a BLOB"), 0o600); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond) // several checks
		if got := nextUpdate(); got != day(2) {
			t.Fatalf("after a broken BLOB: nextUpdate %s, want the last good one's %s", got, day(2))
		}
	})
	t.Run("OnSIGHUP", func(t *testing.T) {
		nextUpdate := serve(t, "1h") // no check will come
		put(3)
		time.Sleep(100 * time.Millisecond)
		if got := nextUpdate(); got != day(1) {
			t.Fatalf("before SIGHUP: nextUpdate %s, want the first BLOB's %s", got, day(1))
		}
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitFor(t, nextUpdate, "after SIGHUP", day(3))
	})
}
