//go:build !nogui

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	"io"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"fyne.io/fyne/v2"

	"github.com/keydesk/keydesk/cmd/keydesk/internal/memstat"
	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/inprocess"
	"github.com/keydesk/keydesk/platform/softkey"
	"github.com/keydesk/keydesk/ui"
)

// xvfbFBDirEnv names the -fbdir of the Xvfb the tour runs under: its
// pictures are then the X server's screen, since OpenGL read-back is
// blank there.
const xvfbFBDirEnv = "KEYDESK_XVFB_FBDIR"

// launched is when the program's Go code began, the nearest this process
// can tell of its launch when /proc does not say.
var launched = time.Now()

// tourCommand is the hidden "keydesk gui-tour" (make screenshots, make
// bench-gui): it opens the window, then walks through the screens saving
// pictures (--out), or measures the window (--measure): the time from
// launch to the first frame, the resident memory once idle, and after
// --cycles plugs and unplugs of a software key. It is meant for a
// throwaway data directory under Xvfb.
func tourCommand(args []string, stdout, stderr io.Writer) error {
	f := flag.NewFlagSet("keydesk gui-tour", flag.ContinueOnError)
	f.SetOutput(stderr)
	out := f.String("out", "", "directory for the screenshots")
	measure := f.Bool("measure", false, "measure the first frame and memory instead")
	cycles := f.Int("cycles", 100, "plug/unplug cycles of a software key (--measure)")
	heapProfile := f.String("heap-profile", "", "write heap profiles FILE.idle and FILE.after (--measure)")
	settle := f.Duration("settle", 70*time.Second, "how long after the cycles memory is read again (--measure): Fyne keeps what it drew for a minute")
	if err := f.Parse(args); err != nil {
		return err
	}
	if (*out == "") == !*measure {
		return errors.New("gui-tour: give --out DIR or --measure")
	}
	var (
		blink *blinkingKey
		wrap  func(platform.Enumerator) platform.Enumerator
	)
	if *measure {
		sk, err := softkey.New(softkey.Config{})
		if err != nil {
			return err
		}
		dev := platform.Device{Path: "(measured key)", Transport: platform.TransportUSB, Product: "Measured software key"}
		blink = &blinkingKey{key: pathKey{inprocess.New(sk), dev}}
		wrap = func(e platform.Enumerator) platform.Enumerator { blink.base = e; return blink }
	}
	return runWindow(windowOptions{
		wrapKeys:      wrap,
		watchInterval: map[bool]time.Duration{true: 20 * time.Millisecond}[*measure],
		onStarted: func(a fyne.App, s *ui.Shell) {
			go func() {
				var err error
				if *measure {
					err = measureWindow(s, blink, *cycles, *settle, *heapProfile, stdout)
				} else {
					var capture func() (image.Image, error)
					if dir := os.Getenv(xvfbFBDirEnv); dir != "" {
						capture = func() (image.Image, error) { return xvfbScreen(dir) }
					}
					err = s.Tour(context.Background(), *out, capture)
				}
				if err != nil {
					fmt.Fprintln(stderr, "keydesk gui-tour:", err)
					os.Exit(1)
				}
				fyne.Do(a.Quit)
			}()
		},
	})
}

// measureWindow reports the window's start and memory on stdout.
func measureWindow(s *ui.Shell, blink *blinkingKey, cycles int, settle time.Duration, heapProfile string, stdout io.Writer) error {
	// A capture waits for a frame: the first one drawn.
	fyne.DoAndWait(func() { s.Window().Canvas().Capture() })
	first := time.Since(processStart())
	time.Sleep(2 * time.Second)
	idle, idleHeap := memstat.SettledRSS(), memstat.GoHeap()
	idleKinds := memstat.Breakdown()
	writeHeapProfile(heapProfile, ".idle")
	for range cycles {
		blink.present.Store(true)
		time.Sleep(100 * time.Millisecond)
		blink.present.Store(false)
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	busy, busyHeap := memstat.SettledRSS(), memstat.GoHeap()
	time.Sleep(settle)
	after, afterHeap := memstat.SettledRSS(), memstat.GoHeap()
	writeHeapProfile(heapProfile, ".after")
	fmt.Fprintf(stdout, "first frame: %.0f ms after launch\n", float64(first)/float64(time.Millisecond))
	fmt.Fprintf(stdout, "resident memory when idle: %.1f MB (Go heap %.1f MB)\n", idle, idleHeap)
	fmt.Fprint(stdout, idleKinds)
	fmt.Fprintf(stdout, "resident memory right after %d plug/unplug cycles: %.1f MB (%+.1f MB; Go heap %.1f MB, %+.1f MB)\n",
		cycles, busy, busy-idle, busyHeap, busyHeap-idleHeap)
	fmt.Fprintf(stdout, "resident memory %v later: %.1f MB (%+.1f MB; Go heap %.1f MB, %+.1f MB)\n",
		settle, after, after-idle, afterHeap, afterHeap-idleHeap)
	return nil
}

// writeHeapProfile writes the heap profile to base+suffix, if base is set.
func writeHeapProfile(base, suffix string) {
	if base == "" {
		return
	}
	if f, err := os.Create(base + suffix); err == nil {
		pprof.WriteHeapProfile(f)
		f.Close()
	}
}

// processStart is when the process began: from /proc on Linux (the
// kernel's start time, so that loading the program counts), else when
// its Go code began.
func processStart() time.Time {
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return launched
	}
	// Fields after the command name (which may hold spaces), from field 3.
	i := strings.LastIndexByte(string(stat), ')')
	fields := strings.Fields(string(stat[i+1:]))
	uptime, err := os.ReadFile("/proc/uptime")
	if err != nil || len(fields) < 20 {
		return launched
	}
	ticks, err1 := strconv.ParseFloat(fields[19], 64) // starttime, field 22
	up, err2 := strconv.ParseFloat(strings.Fields(string(uptime))[0], 64)
	if err1 != nil || err2 != nil {
		return launched
	}
	const clockTicks = 100 // USER_HZ on every Linux Keydesk runs on
	return time.Now().Add(-time.Duration((up - ticks/clockTicks) * float64(time.Second)))
}

// blinkingKey is base's keys plus a software key that comes and goes as
// present says: the plug and unplug of a key, for measuring.
type blinkingKey struct {
	base    platform.Enumerator
	key     pathKey
	present atomic.Bool
}

func (b *blinkingKey) Devices(ctx context.Context) ([]platform.Device, error) {
	devs, err := b.base.Devices(ctx)
	if b.present.Load() {
		devs = append(devs, b.key.dev)
	}
	return devs, err
}

func (b *blinkingKey) Open(ctx context.Context, d platform.Device) (platform.Authenticator, error) {
	if d.Path == b.key.dev.Path {
		if !b.present.Load() {
			return nil, &platform.Error{Op: "open", Kind: platform.ErrDeviceRemoved, RetriesLeft: -1}
		}
		return b.key, nil
	}
	return b.base.Open(ctx, d)
}

// pathKey is a key seen at a device record of its own.
type pathKey struct {
	platform.Authenticator
	dev platform.Device
}

func (p pathKey) Device() platform.Device { return p.dev }
