package softkey

import (
	"context"
	"slices"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/keydesk/keydesk/platform/softkey/identity"
)

// TestIdentityIsWhatGetInfoSays keeps the description that programs show
// without starting a key equal to what a running key reports.
func TestIdentityIsWhatGetInfoSays(t *testing.T) {
	k, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	resp := k.CBOR(context.Background(), []byte{byte(CmdGetInfo)}, nil)
	if len(resp) == 0 || resp[0] != 0 {
		t.Fatalf("getInfo: %x", resp)
	}
	var info authenticatorGetInfoResponse
	if err := cbor.Unmarshal(resp[1:], &info); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(info.Versions, identity.Versions) || string(info.AAGUID) != string(identity.AAGUID[:]) {
		t.Fatalf("getInfo says versions %v, AAGUID %x; identity says %v, %x", info.Versions, info.AAGUID, identity.Versions, identity.AAGUID)
	}
}
