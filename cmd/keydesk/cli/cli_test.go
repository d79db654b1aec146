package cli

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/softkey"
	"github.com/keydesk/keydesk/platform/softkey/softkeytest"
)

func TestMain(m *testing.M) { os.Exit(softkeytest.Preload(m)) }

func TestDevicesListsConfiguredKeys(t *testing.T) {
	k := softkeytest.Serve(t, softkey.Config{})
	t.Setenv(platform.ExtraDevicesEnv, k.Path+":/dev/keydesk-vhid99")
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"devices"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	// The absent configured path is not listed: there is no key behind it.
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("want 1 line:\n%s", out.String())
	}
	if !strings.HasPrefix(lines[0], k.Path+"\tUSB\tKeydesk Software Key") || !strings.Contains(lines[0], "FIDO_2_0,FIDO_2_1") || !strings.Contains(lines[0], "ef185f030d9a49098ff093c535aa9ecd") {
		t.Errorf("software key line: %q", lines[0])
	}
}

func TestDevicesOffersLabelledVirtualKey(t *testing.T) {
	t.Setenv(platform.ExtraDevicesEnv, "")
	var out bytes.Buffer
	if err := Run(context.Background(), nil, &out, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "No hardware security key found") || !strings.Contains(out.String(), "virtual") {
		t.Fatalf("output:\n%s", out.String())
	}
}

func TestUnknownCommand(t *testing.T) {
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"frobnicate"}, &out, &out); err == nil {
		t.Fatal("unknown command accepted")
	}
}
