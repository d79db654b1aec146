package cli

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/keydesk/keydesk/platform"
)

// infoJSON is the output of "keydesk info --json". Counters are -1 when
// the key does not report them; minPinLength is 0 when the key does not
// report it (then 4 applies).
type infoJSON struct {
	Path                             string          `json:"path"`
	Transport                        string          `json:"transport"`
	Model                            string          `json:"model"`
	AAGUID                           string          `json:"aaguid"`
	Versions                         []string        `json:"versions"`
	Extensions                       []string        `json:"extensions"`
	Options                          map[string]bool `json:"options"`
	Algorithms                       []int           `json:"algorithms"`
	FirmwareVersion                  uint64          `json:"firmwareVersion"`
	MaxMsgSize                       int             `json:"maxMsgSize"`
	PINProtocols                     []int           `json:"pinProtocols"`
	PINSet                           bool            `json:"pinSet"`
	PINRetries                       int             `json:"pinRetries"`
	UVRetries                        int             `json:"uvRetries"`
	RemainingDiscoverableCredentials int             `json:"remainingDiscoverableCredentials"`
	MinPINLength                     int             `json:"minPinLength"`
	ForcePINChange                   bool            `json:"forcePinChange"`
	EnterpriseAttestation            string          `json:"enterpriseAttestation"`
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (e *env) info(ctx context.Context, args []string) error {
	f := e.newFlags("info", true, true, false)
	if _, err := f.parse(args, 0); err != nil {
		return err
	}
	return e.withKey(ctx, f, func(key platform.Authenticator) error {
		info, err := key.Info(ctx)
		if err != nil {
			return err
		}
		out := newInfoJSON(key.Device(), info)
		if f.json {
			return writeJSON(e.stdout, out)
		}
		printInfo(e.stdout, out)
		return nil
	})
}

// newInfoJSON is what the key at d reports in info.
func newInfoJSON(d platform.Device, info *platform.Info) infoJSON {
	out := infoJSON{
		Path: d.Path, Transport: string(d.Transport), Model: info.Model, AAGUID: hex.EncodeToString(info.AAGUID[:]),
		Versions: orEmpty(info.Versions), Extensions: orEmpty(info.Extensions), Options: info.Options,
		Algorithms: orEmpty(info.Algorithms), FirmwareVersion: info.FirmwareVersion, MaxMsgSize: info.MaxMsgSize,
		PINProtocols: orEmpty(info.PINProtocols), PINSet: info.PINSet(), PINRetries: info.PINRetries, UVRetries: info.UVRetries,
		RemainingDiscoverableCredentials: info.RemainingDiscoverableCredentials, MinPINLength: info.MinPINLength,
		ForcePINChange: info.ForcePINChange, EnterpriseAttestation: string(info.EnterpriseAttestation()),
	}
	if out.Options == nil {
		out.Options = map[string]bool{}
	}
	return out
}

// printInfo prints info's text output.
func printInfo(w io.Writer, out infoJSON) {
	model := out.Model
	if model == "" {
		model = "unknown"
	}
	fmt.Fprintf(w, "path: %s (%s)\n", out.Path, strings.ToUpper(out.Transport))
	fmt.Fprintf(w, "model: %s\n", model)
	fmt.Fprintf(w, "aaguid: %s\n", out.AAGUID)
	fmt.Fprintf(w, "versions: %s\n", strings.Join(out.Versions, ", "))
	fmt.Fprintf(w, "extensions: %s\n", strings.Join(out.Extensions, ", "))
	var opts []string
	for k, v := range out.Options {
		if v {
			opts = append(opts, k)
		} else {
			opts = append(opts, "no"+k)
		}
	}
	slices.Sort(opts)
	fmt.Fprintf(w, "options: %s\n", strings.Join(opts, ", "))
	var algs []string
	for _, a := range out.Algorithms {
		algs = append(algs, algorithmName(a))
	}
	fmt.Fprintf(w, "algorithms: %s\n", strings.Join(algs, ", "))
	fmt.Fprintf(w, "firmware version: %s\n", unknownIfZero(int64(out.FirmwareVersion)))
	fmt.Fprintf(w, "max message size: %s\n", unknownIfZero(int64(out.MaxMsgSize)))
	var protos []string
	for _, p := range out.PINProtocols {
		protos = append(protos, strconv.Itoa(p))
	}
	fmt.Fprintf(w, "PIN protocols: %s\n", strings.Join(protos, ", "))
	fmt.Fprintf(w, "PIN set: %s\n", yesNo(out.PINSet))
	fmt.Fprintf(w, "PIN retries: %s\n", unknownIfNegative(out.PINRetries))
	fmt.Fprintf(w, "UV retries: %s\n", unknownIfNegative(out.UVRetries))
	fmt.Fprintf(w, "remaining discoverable credentials: %s\n", unknownIfNegative(out.RemainingDiscoverableCredentials))
	minLen := out.MinPINLength
	if minLen == 0 {
		minLen = platform.MinPINCodePoints
	}
	fmt.Fprintf(w, "minimum PIN length: %d\n", minLen)
	fmt.Fprintf(w, "force PIN change: %s\n", yesNo(out.ForcePINChange))
	fmt.Fprintf(w, "enterprise attestation: %s\n", out.EnterpriseAttestation)
}

// algorithmName names a COSE algorithm identifier.
func algorithmName(a int) string {
	switch a {
	case -7:
		return "ES256"
	case -8:
		return "EdDSA"
	case -35:
		return "ES384"
	case -36:
		return "ES512"
	case -257:
		return "RS256"
	}
	return strconv.Itoa(a)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func unknownIfNegative(n int) string {
	if n < 0 {
		return "unknown"
	}
	return strconv.Itoa(n)
}

func unknownIfZero(n int64) string {
	if n == 0 {
		return "unknown"
	}
	return strconv.FormatInt(n, 10)
}
