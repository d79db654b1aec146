// Package bench measures the reference RP's sign-in path: complete login
// ceremonies (begin, a real ES256 assertion from an in-process software
// key, finish) over loopback HTTP at several concurrencies, on SQLite and
// PostgreSQL, against go-webauthn's bare login validation in a loop, and
// checks the targets of issue 5's "Performance" section.
package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Usage is the command's help text.
const Usage = `usage: rpbench [flags]

Seeds -users enrolled users into each backend, serves the reference RP on a
loopback port and runs complete login ceremonies over HTTP at each
concurrency for -duration (after a warm-up of a fifth of it, at most 1s),
then prints a Markdown table and checks the targets. Exits 1 on any failed
ceremony or setup error, never on a missed target.

flags:
  -duration D       measured time per concurrency level, and of the bare
                    validation loop (default 5s)
  -users N          enrolled users per backend (default 10000)
  -backends LIST    comma-separated: sqlite, postgres (default sqlite,postgres)
  -concurrency LIST comma-separated worker counts (default 1,16,64)
  -cpuprofile FILE  write a CPU profile of the measured levels (server and
                    load generator share the process)
  -trace FILE       write an execution trace of the measured levels: where
                    goroutines wait to be scheduled (go tool trace)
  -memprofile FILE  write an allocation profile of the run (go tool pprof
                    -sample_index=alloc_space): what makes the garbage
`

// Backend names, as -backends takes them.
const (
	BackendSQLite   = "sqlite"
	BackendPostgres = "postgres"
)

// Config is one run. Run fills it from flags; check validates it.
type Config struct {
	// Duration is each level's measured time, and the bare loop's.
	Duration time.Duration
	// Users is how many enrolled users each backend gets.
	Users int
	// Backends are BackendSQLite and/or BackendPostgres, in run order.
	Backends []string
	// Concurrency lists the worker counts, one level each.
	Concurrency []int
	// CPUProfile, when set, is the file receiving a CPU profile of the
	// measured levels.
	CPUProfile string
	// Trace, when set, is the file receiving a runtime execution trace
	// of the measured levels.
	Trace string
	// MemProfile, when set, is the file receiving an allocation profile
	// of the run.
	MemProfile string
}

// The defaults, and the key pool: user i is enrolled on key i % keys.
const (
	defaultDuration = 5 * time.Second
	defaultUsers    = 10000
	minKeys         = 64
	// maxAssertions bounds the assertions pre-generated for the bare loop.
	maxAssertions = 1000
)

// warmup is how long each level runs before it is measured.
func (c *Config) warmup() time.Duration { return min(time.Second, c.Duration/5) }

// keys is the size of the software key pool: enough for every worker of
// the highest level to have a key of its own.
func (c *Config) keys() int { return max(minKeys, slices.Max(c.Concurrency)) }

func (c *Config) check() error {
	if c.Duration <= 0 {
		return errors.New("-duration must be positive")
	}
	if c.Users < 1 {
		return errors.New("-users must be at least 1")
	}
	if len(c.Backends) == 0 {
		return errors.New("-backends names no backend")
	}
	for _, b := range c.Backends {
		if b != BackendSQLite && b != BackendPostgres {
			return fmt.Errorf("-backends: unknown backend %q: want %s or %s", b, BackendSQLite, BackendPostgres)
		}
	}
	if len(c.Concurrency) == 0 {
		return errors.New("-concurrency names no level")
	}
	for _, n := range c.Concurrency {
		if n < 1 || n > 4096 {
			return fmt.Errorf("-concurrency: %d is not between 1 and 4096", n)
		}
	}
	return nil
}

// ErrCeremoniesFailed is returned (wrapped, with the count) when any
// ceremony of the run failed: the numbers of such a run mean nothing.
var ErrCeremoniesFailed = errors.New("ceremonies failed")

// Run runs the benchmark that args describe, printing progress and the
// report to stdout and the server's warnings to stderr.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	return RunConfig(ctx, cfg, stdout, stderr)
}

func parseFlags(args []string, stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet("rpbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, Usage) }
	cfg := Config{}
	backends := fs.String("backends", BackendSQLite+","+BackendPostgres, "")
	levels := fs.String("concurrency", "1,16,64", "")
	fs.DurationVar(&cfg.Duration, "duration", defaultDuration, "")
	fs.IntVar(&cfg.Users, "users", defaultUsers, "")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "")
	fs.StringVar(&cfg.Trace, "trace", "", "")
	fs.StringVar(&cfg.MemProfile, "memprofile", "", "")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, b := range strings.Split(*backends, ",") {
		if b = strings.TrimSpace(b); b != "" {
			cfg.Backends = append(cfg.Backends, b)
		}
	}
	for _, s := range strings.Split(*levels, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			return cfg, fmt.Errorf("-concurrency: %q is not a number", s)
		}
		cfg.Concurrency = append(cfg.Concurrency, n)
	}
	return cfg, cfg.check()
}

// RunConfig runs the benchmark cfg describes; see Run.
func RunConfig(ctx context.Context, cfg Config, stdout, stderr io.Writer) error {
	if err := cfg.check(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "rpbench: %d users on %d software keys, %v per level after a %v warm-up, GOMAXPROCS=%d\n",
		cfg.Users, cfg.keys(), cfg.Duration, cfg.warmup(), runtime.GOMAXPROCS(0))

	start := time.Now()
	pop, err := enroll(ctx, cfg.Users, cfg.keys())
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	fmt.Fprintf(stdout, "seed: %d credentials made by %d software keys and verified by go-webauthn in %v\n",
		cfg.Users, cfg.keys(), time.Since(start).Round(time.Millisecond))

	bare, err := bareValidation(ctx, pop, min(cfg.Users, maxAssertions), cfg.Duration)
	if err != nil {
		return fmt.Errorf("bare validation: %w", err)
	}
	fmt.Fprintf(stdout, "bare: webauthn.ValidateLogin in one goroutine: %.0f validations/s (%d validations of %d pre-made assertions in %v)\n",
		bare.perSecond(), bare.n, bare.assertions, bare.elapsed.Round(time.Millisecond))

	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}

	if cfg.Trace != "" {
		f, err := os.Create(cfg.Trace)
		if err != nil {
			return fmt.Errorf("trace: %w", err)
		}
		defer f.Close()
		if err := trace.Start(f); err != nil {
			return fmt.Errorf("trace: %w", err)
		}
		defer trace.Stop()
	}
	if cfg.MemProfile != "" {
		f, err := os.Create(cfg.MemProfile)
		if err != nil {
			return fmt.Errorf("memory profile: %w", err)
		}
		defer f.Close()
		// Written last: the allocations of every level.
		defer pprof.Lookup("allocs").WriteTo(f, 0)
	}
	var results []levelResult
	for _, b := range cfg.Backends {
		rs, err := runBackend(ctx, cfg, b, pop, stdout, stderr)
		results = append(results, rs...)
		if err != nil {
			return fmt.Errorf("%s: %w", b, err)
		}
	}

	fmt.Fprintln(stdout)
	writeTable(stdout, results, bare)
	fmt.Fprintln(stdout)
	writeTargets(stdout, results, bare)

	failed := 0
	for _, r := range results {
		failed += r.errors
	}
	if failed > 0 {
		return fmt.Errorf("%d %w", failed, ErrCeremoniesFailed)
	}
	return ctx.Err()
}
