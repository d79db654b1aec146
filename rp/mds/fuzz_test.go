package mds_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/keydesk/keydesk/rp/mds"
	"github.com/keydesk/keydesk/rp/mds/mdstest"
)

// FuzzParse feeds the BLOB loader mutated BLOBs: it must answer with a
// provider or an error, never panic.
func FuzzParse(f *testing.F) {
	// Fixed keys: each fuzz worker builds its own PKI, and the seeds the
	// coordinator signed must verify in all of them.
	pk := mdstest.NewPKIWithKeys(f, "fuzz", time.Now().AddDate(1, 0, 0), mdstest.FixedKey(f, 1), mdstest.FixedKey(f, 2), mdstest.FixedKey(f, 3))
	valid := pk.Blob(f, mdstest.Entry(mdstest.SoftkeyAAGUID, [][]byte{pk.Root.Raw}))
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add(mdstest.FlipSignature(valid))
	example, err := os.ReadFile("testdata/fido-example-blob.jwt")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	f.Add([]byte("e30.e30.")) // {}.{}.
	opts := mds.Options{Roots: pk.Pool(), AllowExpired: true}
	if _, _, err := mds.Parse(valid, opts); err != nil {
		f.Fatalf("the valid seed does not load: %v", err)
	}
	f.Fuzz(func(t *testing.T, blob []byte) {
		p, info, err := mds.Parse(blob, opts)
		if (err == nil) != (p != nil && info != nil) {
			t.Fatalf("Parse = %v, %v, %v: want a provider and info, or an error", p, info, err)
		}
		if err == nil && !strings.Contains(info.Signer, "fuzz MDS signer") {
			t.Fatalf("accepted a BLOB signed by %q", info.Signer)
		}
	})
}
