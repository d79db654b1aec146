package phonetest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"time"
)

// leftovers waits up to grace for every process whose command line mentions dir (Chromium
// passes its profile dir to each of its child processes: zygotes, renderers, the GPU and
// network services, crashpad) to exit by itself after the browser closed, then kills the ones
// still running and returns their pids and names. A non-empty result is a bug in the shutdown
// to report, not something to hide: a test run must leave no browser behind. The check reads
// /proc, so it only looks on Linux (where CI runs); elsewhere it finds nothing.
func leftovers(dir string, grace time.Duration) []string {
	deadline := time.Now().Add(grace)
	for {
		pids := processesMentioning(dir)
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			var left []string
			for _, pid := range pids {
				left = append(left, fmt.Sprintf("%d (%s)", pid, processName(pid)))
				if p, err := os.FindProcess(pid); err == nil {
					_ = p.Kill() // best effort: it may have exited meanwhile
				}
			}
			return left
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// processesMentioning returns the pids of the processes, other than this one, that have an
// argument containing dir. dir is a fresh temp dir, so only our browser's processes match.
func processesMentioning(dir string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		if bytes.Contains(cmdline, []byte(dir)) && !isZombie(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// isZombie reports whether pid has exited and waits only for its parent to reap it: it holds
// no resources and needs no kill.
func isZombie(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true // gone
	}
	// The state follows the parenthesised name, which may itself hold spaces or parens.
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X')
}

// processName returns the short name of pid, for an error message.
func processName(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return "?"
	}
	return string(bytes.TrimSpace(b))
}

// removeAll removes dir, retrying for a moment: a Chromium child that is still exiting can
// write into the profile (crash reports, caches) just after the browser closed.
func removeAll(dir string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := os.RemoveAll(dir)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// watchdogScript waits for its stdin to close (when this process stops the browser, exits or
// is killed), then, if the temp dir is still there, waits for the processes that mention it
// to end (killing them after five seconds) and removes it. The kernel kills Chromium when the
// test process dies (chromedp starts it with PR_SET_PDEATHSIG), but its children take a moment
// to follow, and the network service writes into the profile as it goes: removing the dir
// before they are gone would leave it half recreated. Nothing else would clean up after, say,
// go test's timeout panic. The script ignores the terminal's signals so that an interrupted run
// is still cleaned up. grep reads the dir from its stdin, not its arguments, so as not to
// find itself.
const watchdogScript = `trap '' INT TERM HUP QUIT
read _ || :
dir=$PHONETEST_DIR
[ -d "$dir" ] || exit 0
users() { printf '%s\n' "$dir" | grep -lsF -f - /proc/[0-9]*/cmdline | sed 's|^/proc/||; s|/cmdline$||'; }
n=0
while [ -n "$(users)" ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n+1)); done
for pid in $(users); do kill -9 "$pid" 2>/dev/null; done
n=0
while [ -d "$dir" ] && [ $n -lt 50 ]; do rm -rf "$dir" 2>/dev/null || sleep 0.1; n=$((n+1)); done
exit 0`

// startWatchdog starts the process that removes dir if this one dies without stopping the
// browser, and returns the func that lets it go (after a normal stop, which removes dir
// itself). Without /bin/sh (Windows), there is no watchdog.
func startWatchdog(dir string) (release func() error, err error) {
	sh, err := exec.LookPath("/bin/sh")
	if err != nil {
		return func() error { return nil }, nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start watchdog: %w", err)
	}
	cmd := exec.Command(sh, "-c", watchdogScript, "phonetest-watchdog")
	// The dir goes in the environment, not the command line, so that the leftover check,
	// which looks for it in command lines, does not take the watchdog for a Chromium process.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "PHONETEST_DIR=" + dir}
	cmd.Stdin = r
	cmd.Dir = "/"
	err = cmd.Start()
	r.Close()
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("start watchdog: %w", err)
	}
	return func() error {
		w.Close()
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("watchdog: %w", err)
		}
		return nil
	}, nil
}
