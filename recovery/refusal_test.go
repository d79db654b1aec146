package recovery

import (
	"errors"
	"strings"
	"testing"

	"github.com/keydesk/keydesk/rp/api"
)

// TestConcludeTellsWhyARefusal: each reason the server names has its own
// words at the desktop; one it does not name (an older server, or a
// reason newer than this client) gets the words that cover them all.
func TestConcludeTellsWhyARefusal(t *testing.T) {
	for _, tt := range []struct {
		name    string
		reason  string
		refusal Refusal
		says    string
	}{
		{"ShouldNameAWrongNumber", api.RefusedWrongNumber, RefusedWrongNumber, "pick the number shown here"},
		{"ShouldNameNotMe", api.RefusedOnPhone, RefusedNotMe, `"This was not me" was tapped`},
		{"ShouldNameAnotherComputer", api.RefusedBadSignature, RefusedBadSignature, "from another computer"},
		{"ShouldCoverNoReason", "", "", `or "This was not me" was tapped`},
		{"ShouldCoverAnUnknownReason", "solar_flare", "", `or "This was not me" was tapped`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := &Handoff{}
			o, done, err := h.conclude(api.RecoveryStatus{Status: "refused", Reason: tt.reason})
			if err != nil || !done {
				t.Fatalf("conclude = %+v, %v, %v", o, done, err)
			}
			if o.Status != Refused || o.Refusal != tt.refusal || !strings.Contains(o.Reason, tt.says) {
				t.Errorf("outcome %+v; want refused for %q, saying %q", o, tt.refusal, tt.says)
			}
			if !errors.Is(o.Err(), ErrRefused) {
				t.Errorf("Err() = %v", o.Err())
			}
			// Asked again, the handoff says the same.
			if again, _, _ := h.outcomeOfEndLocked(); again.Refusal != o.Refusal || again.Reason != o.Reason {
				t.Errorf("again: %+v", again)
			}
		})
	}
}
