// Package phonetest runs the phone side of account recovery in a real headless Chromium, so that
// tests exercise the relying party's phone page with the browser's own WebAuthn, CSP and fetch
// rules instead of a mock.
//
// A [Browser] is one Chromium process driven over the Chrome DevTools Protocol (CDP). Each
// [Phone] is a tab of it in a fresh, incognito-like browser context (no cookies, storage or
// cache shared with any other phone) with a CDP virtual authenticator added: a CTAP2 platform
// authenticator ("internal" transport) that holds discoverable credentials (passkeys), performs
// user verification and simulates the user's touch, as a phone's built-in authenticator does.
//
// Starting Chromium takes about half a second, so a test package shares one browser through
// [StartMain] from TestMain and gives each test its own phones with [Browser.NewPhone]; [Start]
// gives one test a browser of its own.
//
// # Secure context and RP ID
//
// WebAuthn only runs in a secure context. http://localhost and http://127.0.0.1 are secure
// contexts without TLS, but the RP ID must be a registrable suffix of the page's host, and an IP
// address cannot serve as an RP ID. So test servers are reached as http://localhost:PORT with the
// RP ID "localhost" and the origin "http://localhost:PORT": pass an httptest server's URL
// through [LocalhostURL].
//
// # What a phone records
//
// A phone keeps, from its first page on, the console (console calls, uncaught exceptions and
// unhandled rejections, the browser's own log), the CSP violations its pages' policies
// reported, and the HTTP requests it sent, so that a test can assert that the phone page logs
// no error, violates none of its own policy, and never sends a secret it holds (such as a key
// in the URL fragment). Headless Chromium, like a phone's browser, fetches /favicon.ico after a
// page loads: a test server should answer it (a 204 will do) under a policy that allows it
// (img-src 'self'), or the 404 or the violation shows up among the errors.
//
// # Requirements
//
// Chromium must be installed: Debian's chromium package, which `make deps` installs. The
// environment variable KEYDESK_CHROMIUM ([EnvChromium]) names another binary. A missing browser
// fails the test, never skips it: a test skipped on CI counts as missing.
package phonetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	// chromedp drives a real Chromium over the DevTools Protocol from Go, with no external
	// driver (no chromedriver, no Node): it starts the browser on a pipe, and its cdproto
	// module types the protocol, including the WebAuthn domain's virtual authenticator that
	// the phone needs. It depends on nothing but the standard library and cdproto.
	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"
)

// EnvChromium names the environment variable that, when set, is the Chromium (or Chrome)
// binary to run, as a path or a name looked up in PATH, instead of searching for one.
const EnvChromium = "KEYDESK_CHROMIUM"

// ErrNotInstalled is returned (wrapped, with what was looked for) when no Chromium binary is
// found. Tests must fail on it rather than skip.
var ErrNotInstalled = errors.New("no Chromium browser installed: run make deps (it installs Debian's chromium package)")

// Timeouts. Chromium's first start on a cold 2-core CI machine can take several seconds; the
// graceful close is normally well under a second; a phone's action (a navigation, a wait for
// an element, a WebAuthn ceremony) is bounded so that a page that never answers fails its test
// with a message instead of hanging until go test's own timeout.
const (
	startTimeout  = 60 * time.Second
	closeTimeout  = 10 * time.Second
	leftoverGrace = 3 * time.Second
	// ActionTimeout bounds each of a Phone's actions.
	ActionTimeout = 20 * time.Second
)

// binaryNames are searched in PATH, in order, when EnvChromium is not set: Debian's package
// installs chromium; Ubuntu's older releases and Google's packages use the other names.
var binaryNames = []string{"chromium", "chromium-browser", "google-chrome-stable", "google-chrome"}

// macOSPaths are tried after binaryNames, for developers on macOS.
var macOSPaths = []string{
	"/Applications/Chromium.app/Contents/MacOS/Chromium",
	"/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
}

// Browser is a running headless Chromium. Its methods are safe for concurrent use by parallel
// tests: each phone is a tab with its own CDP session.
type Browser struct {
	dir  string // temp dir: the profile and Chromium's config, cache and data dirs; removed on stop
	ctx  context.Context
	stop func() error

	output *tailBuffer // the end of Chromium's stderr, for failure messages

	stopOnce sync.Once
	stopErr  error
}

// Start starts a browser for one test (or benchmark) and stops it when the test ends, failing
// the test if it cannot be stopped cleanly (a Chromium process left running). It fails the test
// if Chromium is not installed. A package with several tests should share one browser through
// [StartMain].
func Start(tb testing.TB) *Browser {
	tb.Helper()
	b, err := start()
	if err != nil {
		tb.Fatalf("phonetest: %v", err)
	}
	tb.Cleanup(func() {
		if err := b.close(); err != nil {
			tb.Errorf("phonetest: %v", err)
		}
	})
	return b
}

// StartMain starts a browser to be shared by a whole test package from TestMain:
//
//	func TestMain(m *testing.M) {
//		b, stop, err := phonetest.StartMain()
//		if err != nil {
//			fmt.Fprintln(os.Stderr, err)
//			os.Exit(1)
//		}
//		browser = b
//		code := m.Run()
//		if err := stop(); err != nil {
//			fmt.Fprintln(os.Stderr, err)
//			code = 1
//		}
//		os.Exit(code)
//	}
//
// Call stop after m.Run and before os.Exit (a deferred call would not run); its error means
// the browser did not shut down cleanly, and TestMain should then exit non-zero. An error from
// StartMain means Chromium could not be started: TestMain must exit non-zero, not skip the
// tests. If the process dies without calling stop (a test timeout's panic), the kernel kills
// Chromium and a watchdog removes its profile directory.
func StartMain() (b *Browser, stop func() error, err error) {
	b, err = start()
	if err != nil {
		return nil, nil, fmt.Errorf("phonetest: %w", err)
	}
	return b, func() error {
		if err := b.close(); err != nil {
			return fmt.Errorf("phonetest: %w", err)
		}
		return nil
	}, nil
}

// FindChromium returns the path of the browser that Start would run: $KEYDESK_CHROMIUM if set,
// else the first of chromium, chromium-browser, google-chrome-stable and google-chrome in PATH
// (then the usual macOS application paths). The error wraps [ErrNotInstalled].
func FindChromium() (string, error) {
	if v := os.Getenv(EnvChromium); v != "" {
		p, err := exec.LookPath(v)
		if err != nil {
			return "", fmt.Errorf("%w: %s=%q: %v", ErrNotInstalled, EnvChromium, v, err)
		}
		return p, nil
	}
	for _, name := range binaryNames {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	if runtime.GOOS == "darwin" {
		for _, p := range macOSPaths {
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("%w (looked for %s in PATH; set %s to use another binary)",
		ErrNotInstalled, strings.Join(binaryNames, ", "), EnvChromium)
}

// flags returns the command line for a browser with the profile dir: chromedp's defaults (the
// ones Puppeteer uses to keep a test browser quiet: no background networking, no sync, no
// extensions, no throttling of background tabs) plus the ones a CI container needs.
func flags(exe, dir string, out io.Writer) []chromedp.ExecAllocatorOption {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		// The new headless mode is the real browser without a window (the old one was a
		// separate implementation); the phone page must behave as it does on a phone.
		chromedp.Flag("headless", "new"),
		// There is no GPU in a container or on CI; software rendering is enough for pages
		// that are text and a button.
		chromedp.Flag("disable-gpu", true),
		// /dev/shm is 64 MB in a default container, and Chromium crashes when it fills it:
		// keep shared memory files in the temp dir instead. (Also in chromedp's defaults;
		// stated here because CI depends on it.)
		chromedp.Flag("disable-dev-shm-usage", true),
		// A fresh profile for every browser, so no state survives from a previous run, and
		// no first-run page or default-browser prompt opens a tab we did not ask for.
		chromedp.UserDataDir(filepath.Join(dir, "profile")),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.CombinedOutput(out),
		// Chromium keeps a few things outside the profile: Debian's build starts a crash
		// handler whose database is under $XDG_CONFIG_HOME/chromium, and dconf and other
		// libraries cache under $XDG_CACHE_HOME. Point them into the temp dir too, so a test
		// run writes nothing in the developer's home, and so the crash handler's command
		// line names the dir and the leftover check sees it.
		chromedp.Env(
			"XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
			"XDG_CACHE_HOME="+filepath.Join(dir, "cache"),
			"XDG_DATA_HOME="+filepath.Join(dir, "data"),
		),
	)
	if os.Geteuid() == 0 {
		// Chromium refuses to start as root with its sandbox, and CI runs the tests as root
		// in a container. Without the sandbox a compromised renderer could act as root, which
		// is acceptable for tests only: this browser loads nothing but pages from the test's
		// own loopback servers, and it lives for one test run. Never copy this to a browser
		// that loads content from the network.
		opts = append(opts, chromedp.NoSandbox)
	} else {
		// Keep the sandbox when we can; chromedp would otherwise add no-sandbox for root only.
		opts = append(opts, chromedp.Flag("no-sandbox", false))
	}
	return opts
}

// start finds and starts Chromium and waits until its first tab answers.
func start() (*Browser, error) {
	exe, err := FindChromium()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "keydesk-phonetest-")
	if err != nil {
		return nil, fmt.Errorf("create profile dir: %w", err)
	}
	// Without symlinks (macOS's temp dir is under /var -> /private/var), so that the path
	// the leftover check looks for matches however Chromium normalises it.
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		dir = r
	}
	b := &Browser{dir: dir, output: newTailBuffer(16 << 10)}

	unwatch, err := startWatchdog(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}

	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(), flags(exe, dir, b.output)...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	b.ctx = ctx
	b.stop = func() error {
		// A graceful Browser.close lets Chromium end its child processes itself; the
		// cancels then release chromedp's goroutines (and kill Chromium if the close timed
		// out).
		cctx, ccancel := context.WithTimeout(ctx, closeTimeout)
		err := chromedp.Cancel(cctx)
		ccancel()
		cancel()
		allocCancel()
		if err != nil && !errors.Is(err, context.Canceled) {
			err = fmt.Errorf("close Chromium: %w", err)
		} else {
			err = nil
		}
		errs := []error{err}
		if left := leftovers(dir, leftoverGrace); len(left) > 0 {
			errs = append(errs, fmt.Errorf("processes of Chromium left running after close (killed now): %v", left))
		}
		if err := removeAll(dir); err != nil {
			errs = append(errs, fmt.Errorf("remove profile dir: %w", err))
		}
		errs = append(errs, unwatch())
		return errors.Join(errs...)
	}

	// The first Do starts the browser and binds its life to ctx, which has no deadline: the
	// start's own bound is a timer that cancels the allocator.
	timer := time.AfterFunc(startTimeout, allocCancel)
	err = chromedp.Do(ctx)
	if fired := !timer.Stop(); fired || err != nil {
		if fired {
			err = fmt.Errorf("no answer within %v", startTimeout)
		}
		tail := b.outputTail()
		if strings.Contains(err.Error(), strings.TrimSpace(b.output.String())) {
			tail = "" // chromedp's error already shows it
		}
		stopErr := b.close()
		return nil, errors.Join(fmt.Errorf("start %s: %w%s", exe, err, tail), stopErr)
	}
	return b, nil
}

// close stops the browser and removes its files; later calls return the first call's result.
func (b *Browser) close() error {
	b.stopOnce.Do(func() { b.stopErr = b.stop() })
	return b.stopErr
}

// outputTail returns the end of Chromium's output for an error message, or "".
func (b *Browser) outputTail() string {
	s := strings.TrimSpace(b.output.String())
	if s == "" {
		return ""
	}
	return "\nChromium's output (end):\n" + s
}

// Version returns the browser's product and version, such as "Chrome/156.0.8078.108", for a
// test's log.
func (b *Browser) Version() (string, error) {
	ctx, cancel := context.WithTimeout(b.ctx, ActionTimeout)
	defer cancel()
	v, err := chromedp.CallBrowser(ctx, browser.GetVersion, cdp.Empty{})
	if err != nil {
		return "", err
	}
	return v.Product, nil
}

// LocalhostURL returns rawURL with a loopback IP host (127.0.0.1, [::1]) replaced by
// "localhost", keeping the port: an httptest server's URL becomes one a WebAuthn page can use
// with the RP ID "localhost" (an IP address cannot be an RP ID). Other URLs are returned as
// they are.
func LocalhostURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawURL
	}
	if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
		return rawURL
	}
	if p := u.Port(); p != "" {
		u.Host = net.JoinHostPort("localhost", p)
	} else {
		u.Host = "localhost"
	}
	return u.String()
}

// tailBuffer keeps the last max bytes written to it; Chromium's output goes there so that a
// failed start can show why without the tests' logs filling with its routine warnings.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func newTailBuffer(max int) *tailBuffer { return &tailBuffer{max: max} }

// Write implements io.Writer.
func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// String returns what is kept.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
