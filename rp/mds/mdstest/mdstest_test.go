package mdstest_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/metadata"
	"github.com/google/uuid"

	"github.com/keydesk/keydesk/platform/softkey"
	"github.com/keydesk/keydesk/rp/mds"
	"github.com/keydesk/keydesk/rp/mds/mdstest"
)

func TestSoftkeyAAGUIDShouldBeTheSoftwareKeys(t *testing.T) {
	if got := uuid.UUID(softkey.AAGUID).String(); got != mdstest.SoftkeyAAGUID {
		t.Fatalf("softkey.AAGUID = %s, SoftkeyAAGUID = %s", got, mdstest.SoftkeyAAGUID)
	}
}

func TestSoftkeyBlob(t *testing.T) {
	a, err := softkey.New(softkey.Config{Presence: softkey.ApproveAlways})
	if err != nil {
		t.Fatal(err)
	}
	blob, roots := mdstest.SoftkeyBlob(t, a, metadata.FidoCertifiedL1, metadata.Revoked)
	p, info, err := mds.Parse(blob, mds.Options{Roots: roots})
	if err != nil {
		t.Fatal(err)
	}
	if info.Entries != 1 {
		t.Errorf("info = %+v, want 1 entry", info)
	}
	e, err := p.GetEntry(context.Background(), uuid.UUID(softkey.AAGUID))
	if err != nil || e == nil {
		t.Fatalf("GetEntry = %v, %v", e, err)
	}
	if rs := e.MetadataStatement.AttestationRootCertificates; len(rs) != 1 || !bytes.Equal(rs[0].Raw, a.AttestationCA()) {
		t.Error("the entry's root is not the key's attestation CA")
	}
	if n := len(e.StatusReports); n != 2 || e.StatusReports[n-1].Status != metadata.Revoked {
		t.Errorf("status reports = %+v, want FIDO_CERTIFIED_L1 then REVOKED", e.StatusReports)
	}
	// Valid for a day: not after it.
	tomorrow := time.Now().Add(25 * time.Hour)
	_, _, err = mds.Parse(blob, mds.Options{Roots: roots, Now: func() time.Time { return tomorrow }})
	if !errors.Is(err, mds.ErrUntrusted) {
		t.Errorf("Parse a day later = %v, want ErrUntrusted", err)
	}
}

func TestRootPEMShouldVerifyTheBlob(t *testing.T) {
	p := mdstest.NewPKI(t, "pem", time.Now().AddDate(0, 0, 1))
	roots, err := mds.ParseRoots(p.RootPEM())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := mds.Parse(p.Blob(t), mds.Options{Roots: roots}); err != nil {
		t.Fatal(err)
	}
}

func TestFlipSignatureShouldChangeOnlyTheSignature(t *testing.T) {
	p := mdstest.NewPKI(t, "flip", time.Now().AddDate(0, 0, 1))
	blob := p.Blob(t)
	flipped := mdstest.FlipSignature(blob)
	i := bytes.LastIndexByte(blob, '.')
	if !bytes.Equal(blob[:i], flipped[:i]) || bytes.Equal(blob, flipped) {
		t.Fatal("FlipSignature changed the wrong part")
	}
	if _, err := base64.RawURLEncoding.DecodeString(string(flipped[i+1:])); err != nil {
		t.Fatalf("flipped signature is not base64url: %v", err)
	}
	if _, _, err := mds.Parse(flipped, mds.Options{Roots: p.Pool()}); !errors.Is(err, mds.ErrSignature) {
		t.Fatalf("Parse = %v, want ErrSignature", err)
	}
}
