package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/keydesk/keydesk/platform/softkey"
	"github.com/keydesk/keydesk/platform/softkey/ctaphid"
)

// stateKeyEnv names the environment variable that may carry the state
// file's sealing key (64 hex digits) instead of a key file.
const stateKeyEnv = "KEYDESK_SOFTKEY_KEY"

// run parses args, serves the key until ctx ends, and reports problems as
// errors; main only prints them.
func run(ctx context.Context, args []string, stderr io.Writer) error {
	fl := flag.NewFlagSet("softkey", flag.ContinueOnError)
	fl.SetOutput(stderr)
	socket := fl.String("socket", "", "unix socket `path` to serve on (required)")
	statePath := fl.String("state", "", "state `file`; without it the key lives in memory only")
	keyFile := fl.String("state-key-file", "", "`file` holding the state's sealing key (default: STATE.key, created on first use; or $"+stateKeyEnv+")")
	presence := fl.String("presence", "auto", "how the simulated user answers touch requests: auto, deny, delay=DURATION or signal (SIGUSR1 touches)")
	noneAtt := fl.Bool("none-attestation", false, `return "none" attestation instead of "packed"`)
	noBio := fl.Bool("no-bio", false, "remove the simulated fingerprint sensor")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *socket == "" || fl.NArg() > 0 {
		fl.Usage()
		return errors.New("--socket is required and no arguments are taken")
	}
	pres, sig, err := softkey.ParsePresence(*presence)
	if err != nil {
		return err
	}
	cfg := softkey.Config{Presence: pres, NoneAttestation: *noneAtt, NoBiometrics: *noBio}
	if *statePath != "" {
		key, err := stateKey(*statePath, *keyFile, stderr)
		if err != nil {
			return err
		}
		cfg.StatePath, cfg.StateKey = *statePath, key
	}
	key, err := softkey.New(cfg)
	if err != nil {
		return err
	}

	if err := removeStaleSocket(*socket); err != nil {
		return err
	}
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: *socket, Net: "unixpacket"})
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *socket, err)
	}
	defer os.Remove(*socket)
	defer os.Remove(*socket + ".lock") // the vhid shim's stand-in for flock on the device
	dev := ctaphid.NewDevice(key, ctaphid.Options{Version: [3]byte{1, 0, 0}})
	defer dev.Close()

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sigs)
	go func() {
		for s := range sigs {
			switch s {
			case syscall.SIGUSR1:
				if sig != nil {
					sig.Touch()
				}
			case syscall.SIGUSR2:
				key.PowerCycle()
			}
		}
	}()

	fmt.Fprintf(stderr, "softkey: serving on %s (presence %s)\n", *socket, *presence)
	fmt.Fprintf(stderr, "softkey: LD_PRELOAD=build/vhid.so KEYDESK_VHID_SOCKET=%s fido2-token -I /dev/keydesk-vhid0\n", *socket)
	err = ctaphid.Serve(ctx, ln, dev)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// stateKey finds the state's sealing key: the environment, or a key file
// created with a fresh random key the first time. The key file sits with
// the state only for this test tool; the desktop app keeps it in the OS
// keyring.
func stateKey(statePath, keyFile string, stderr io.Writer) ([]byte, error) {
	if v := os.Getenv(stateKeyEnv); v != "" {
		k, err := hex.DecodeString(strings.TrimSpace(v))
		if err != nil || len(k) != 32 {
			return nil, fmt.Errorf("$%s must be 64 hex digits", stateKeyEnv)
		}
		return k, nil
	}
	if keyFile == "" {
		keyFile = statePath + ".key"
	}
	b, err := os.ReadFile(keyFile)
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(statePath); serr == nil {
			return nil, fmt.Errorf("state %s exists but its key file %s does not", statePath, keyFile)
		}
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			return nil, err
		}
		if err := os.WriteFile(keyFile, []byte(hex.EncodeToString(k)+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("create state key: %w", err)
		}
		fmt.Fprintf(stderr, "softkey: created state key %s\n", keyFile)
		return k, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state key: %w", err)
	}
	k, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(k) != 32 {
		return nil, fmt.Errorf("state key %s must hold 64 hex digits", keyFile)
	}
	return k, nil
}

// removeStaleSocket deletes a socket file left by a previous run, but
// never anything else, and never a socket someone still listens on.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	if c, err := net.Dial("unixpacket", path); err == nil {
		c.Close()
		return fmt.Errorf("%s is in use by another softkey", path)
	}
	return os.Remove(path)
}
