// Package memstat reads a process's own memory for the GUI measurements
// (keydesk gui-tour --measure and its baseline window): the resident set
// once the garbage is returned, the Go heap, and where the resident
// memory is by kind of mapping.
package memstat

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
)

// SettledRSS is the resident memory in MB once the garbage is collected
// and returned, so that two readings differ by what is kept.
func SettledRSS() float64 {
	runtime.GC()
	debug.FreeOSMemory()
	kb := 0
	if f, err := os.Open("/proc/self/status"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
				kb, _ = strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			}
		}
	}
	return float64(kb) / 1024
}

// GoHeap is the Go heap in use, in MB (after SettledRSS's collection).
func GoHeap() float64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapInuse) / (1 << 20)
}

// Breakdown is where this process's resident memory is, by kind of
// mapping, as text ("" when /proc cannot tell).
func Breakdown() string {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return ""
	}
	defer f.Close()
	exe, _ := os.Executable()
	kinds, err := residentByKind(f, exe)
	if err != nil {
		return ""
	}
	return formatResident(kinds)
}

// Where a process's resident memory is, by kind of mapping: what the
// GUI measurement reports beside the total, so that the share of the
// software OpenGL that Xvfb forces (Mesa's llvmpipe, which a desktop
// with a GPU driver does not load) is read off each run rather than
// worked out by hand with pmap.
const (
	memProgram  = "the program (code and data)"
	memSoftGL   = "Mesa's software OpenGL (llvmpipe: libLLVM, the DRI driver)"
	memAnon     = "anonymous (the Go heap, stacks; the C libraries' large allocations)"
	memCHeap    = "the C heap"
	memShared   = "shared memory (the X server's image buffers)"
	memLibs     = "other libraries"
	memElsewise = "other"
)

// residentByKind sums the Rss lines of a /proc/PID/smaps by kind of
// mapping, in kB; exe is the program's own path.
func residentByKind(smaps io.Reader, exe string) (map[string]int, error) {
	out := map[string]int{}
	kind := memElsewise
	sc := bufio.NewScanner(smaps)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if strings.HasSuffix(fields[0], ":") {
			if fields[0] == "Rss:" && len(fields) >= 2 {
				kb, err := strconv.Atoi(fields[1])
				if err != nil {
					return nil, fmt.Errorf("smaps: %q: %w", line, err)
				}
				out[kind] += kb
			}
			continue
		}
		// A mapping's header: address range, perms, offset, device,
		// inode, and the path (which may hold spaces) or a [name].
		if !strings.Contains(fields[0], "-") || len(fields) < 5 {
			continue
		}
		path := ""
		if len(fields) >= 6 {
			path = strings.Join(fields[5:], " ")
		}
		kind = mappingKind(path, exe)
	}
	return out, sc.Err()
}

// mappingKind is the kind of the mapping of path.
func mappingKind(path, exe string) string {
	base := filepath.Base(path)
	switch {
	case path == "":
		return memAnon
	case path == exe:
		return memProgram
	case path == "[heap]":
		return memCHeap
	case strings.HasPrefix(path, "SYSV") || strings.HasPrefix(path, "/SYSV"):
		return memShared
	case strings.HasPrefix(base, "libLLVM") || strings.HasSuffix(base, "_dri.so") || strings.HasPrefix(base, "libgallium"):
		return memSoftGL
	case strings.Contains(base, ".so"):
		return memLibs
	}
	return memElsewise
}

// formatResident lists the kinds, largest first, in MB.
func formatResident(kinds map[string]int) string {
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		if kinds[names[i]] != kinds[names[j]] {
			return kinds[names[i]] > kinds[names[j]]
		}
		return names[i] < names[j]
	})
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "  %6.1f MB  %s\n", float64(kinds[n])/1024, n)
	}
	return b.String()
}
