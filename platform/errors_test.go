package platform

import (
	"errors"
	"strings"
	"testing"
)

func TestFromCode(t *testing.T) {
	tests := []struct {
		name string
		code int
		want error
	}{
		{name: "ShouldMapWrongPIN", code: 0x31, want: ErrPINInvalid},
		{name: "ShouldMapPINBlocked", code: 0x32, want: ErrPINBlocked},
		{name: "ShouldMapPowerCycleNeeded", code: 0x34, want: ErrPINAuthBlocked},
		{name: "ShouldMapPolicyViolation", code: 0x37, want: ErrPINPolicy},
		{name: "ShouldMapDenied", code: 0x27, want: ErrOperationDenied},
		{name: "ShouldMapUserActionTimeout", code: 0x2F, want: ErrTimeout},
		{name: "ShouldMapCancel", code: 0x2D, want: ErrCancelled},
		{name: "ShouldMapNoCredentials", code: 0x2E, want: ErrNoCredentials},
		{name: "ShouldMapResetTooLate", code: 0x30, want: ErrNotAllowed},
		{name: "ShouldMapBusy", code: 0x06, want: ErrDeviceBusy},
		{name: "ShouldMapLibfido2RXToRemoved", code: -2, want: ErrDeviceRemoved},
		{name: "ShouldMapUnknownToProtocol", code: 0x7F, want: ErrProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := FromCode("test", tt.code)
			if !errors.Is(err, tt.want) {
				t.Fatalf("FromCode(0x%x) = %v, want %v", tt.code, err, tt.want)
			}
			var e *Error
			if !errors.As(err, &e) || e.Code != tt.code {
				t.Fatalf("code not kept: %#v", err)
			}
			if !strings.HasPrefix(err.Error(), "test: ") || len(e.Message()) < 10 {
				t.Fatalf("message %q", err.Error())
			}
		})
	}
	if FromCode("x", 0) != nil {
		t.Fatal("status 0 is not an error")
	}
}

func TestMessagesSayWhatToDo(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{name: "ShouldCountAttemptsLeft", err: WithRetries(FromCode("set PIN", 0x31), 5), want: "Wrong PIN. 5 attempts left"},
		{name: "ShouldSayOneAttemptLeft", err: WithRetries(FromCode("set PIN", 0x31), 1), want: "1 attempt left"},
		{name: "ShouldAskForPowerCycle", err: FromCode("get token", 0x34), want: "Unplug the security key, plug it back in"},
		{name: "ShouldExplainBlockedPIN", err: FromCode("get token", 0x32), want: "Only a reset"},
		{name: "ShouldAskForTouch", err: FromCode("reset", 0x2F), want: "touch the key when it blinks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(tt.err.Error(), tt.want) {
				t.Fatalf("%q does not say %q", tt.err.Error(), tt.want)
			}
		})
	}
}

func TestTransportOf(t *testing.T) {
	tests := []struct {
		path string
		want Transport
	}{
		{"/dev/hidraw3", TransportUSB},
		{"/dev/keydesk-vhid0", TransportUSB},
		{"nfc:/sys/devices/virtual/nfc/nfc0", TransportNFC},
		{"pcsc://slot0", TransportNFC},
	}
	for _, tt := range tests {
		if got := TransportOf(tt.path); got != tt.want {
			t.Errorf("TransportOf(%q) = %s, want %s", tt.path, got, tt.want)
		}
	}
}
