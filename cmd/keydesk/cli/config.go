package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/keydesk/keydesk/platform"
)

// stringsFlag is a repeatable string flag.
type stringsFlag []string

func (s *stringsFlag) String() string { return strings.Join(*s, ",") }

func (s *stringsFlag) Set(v string) error {
	*s = append(*s, v)
	return nil
}

func (e *env) config(ctx context.Context, args []string) error {
	return e.sub("config", args, map[string]func([]string) error{
		"min-pin-length":         func(a []string) error { return e.configMinPINLength(ctx, a) },
		"force-pin-change":       func(a []string) error { return e.configSimple(ctx, "force-pin-change", a) },
		"always-uv":              func(a []string) error { return e.configSimple(ctx, "always-uv", a) },
		"enterprise-attestation": func(a []string) error { return e.configSimple(ctx, "enterprise-attestation", a) },
	})
}

// configKey opens the key and reads its Info.
func (e *env) configKey(ctx context.Context, f *flags) (platform.Authenticator, *platform.Info, error) {
	key, err := e.openKey(ctx, f.device)
	if err != nil {
		return nil, nil, err
	}
	info, err := key.Info(ctx)
	if err != nil {
		key.Close()
		return nil, nil, err
	}
	return key, info, nil
}

// configPIN reads the PIN only when the key has one.
func (e *env) configPIN(ctx context.Context, f *flags, info *platform.Info) (string, error) {
	if !info.PINSet() {
		return "", nil
	}
	return e.readPIN(ctx, f.pinStdin)
}

func (e *env) configMinPINLength(ctx context.Context, args []string) error {
	f := e.newFlags("config min-pin-length", false, true, true)
	var rpIDs stringsFlag
	f.Var(&rpIDs, "rp-id", "an RP ID that may read the minimum PIN length (repeatable)")
	pos, err := f.parse(args, 1)
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(pos[0])
	if err != nil || n <= 0 {
		return usageError("min-pin-length: %q is not a positive number", pos[0])
	}
	key, info, err := e.configKey(ctx, f)
	if err != nil {
		return err
	}
	defer key.Close()
	if err := platform.CheckMinPINLength("set the minimum PIN length", info.MinPINLength, n); err != nil {
		return err
	}
	pin, err := e.configPIN(ctx, f, info)
	if err != nil {
		return err
	}
	if err := key.SetMinPINLength(ctx, pin, n, rpIDs); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Minimum PIN length set to %d.\n", n)
	return nil
}

func (e *env) configSimple(ctx context.Context, name string, args []string) error {
	f := e.newFlags("config "+name, false, true, true)
	if _, err := f.parse(args, 0); err != nil {
		return err
	}
	key, info, err := e.configKey(ctx, f)
	if err != nil {
		return err
	}
	defer key.Close()
	pin, err := e.configPIN(ctx, f, info)
	if err != nil {
		return err
	}
	switch name {
	case "force-pin-change":
		if err := key.ForcePINChange(ctx, pin); err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, "The PIN must be changed before it can be used again.")
	case "always-uv":
		if err := key.ToggleAlwaysUV(ctx, pin); err != nil {
			return err
		}
		after, err := key.Info(ctx)
		if err != nil {
			return err
		}
		state := "off"
		if after.Options["alwaysUv"] {
			state = "on"
		}
		fmt.Fprintf(e.stdout, "alwaysUv is now %s.\n", state)
	case "enterprise-attestation":
		if err := key.EnableEnterpriseAttestation(ctx, pin); err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, "Enterprise attestation enabled.")
	}
	return nil
}
