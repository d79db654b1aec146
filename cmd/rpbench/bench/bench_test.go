package bench

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunSmoke runs the generator small and short on both databases, so
// that make test shows it still seeds, serves and signs in without a
// single error. (TMPDIR stays: the postgres user must reach pgtest's dir.)
func TestRunSmoke(t *testing.T) {
	var out, errOut bytes.Buffer
	dir := t.TempDir()
	tracePath, profilePath, memPath := filepath.Join(dir, "trace.out"), filepath.Join(dir, "cpu.prof"), filepath.Join(dir, "mem.prof")
	err := Run(context.Background(), []string{"-users", "50", "-duration", "200ms", "-backends", "sqlite,postgres",
		"-trace", tracePath, "-cpuprofile", profilePath, "-memprofile", memPath}, &out, &errOut)
	if err != nil {
		t.Fatalf("Run: %v\nstdout:\n%s\nstderr:\n%s", err, &out, &errOut)
	}
	for _, want := range []string{
		"| sqlite | 1 |", "| sqlite | 16 |", "| sqlite | 64 |",
		"p95 < 20 ms at concurrency 16 on sqlite: p95",
		"| postgres | 16 |",
		"p95 < 20 ms at concurrency 16 on postgres: p95",
		"of bare validation on sqlite (best concurrency): ",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, &out)
		}
	}
	if errOut.Len() > 0 {
		t.Errorf("stderr is not empty:\n%s", &errOut)
	}
	// Every level measured some CPU: a window the timers missed reads 0.
	for _, line := range strings.Split(out.String(), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 11 || (strings.TrimSpace(cells[1]) != "sqlite" && strings.TrimSpace(cells[1]) != "postgres") {
			continue
		}
		if cpu := strings.TrimSpace(cells[7]); cpu == "0" || cpu == "" {
			t.Errorf("no CPU time in %q", line)
		}
	}
	// An execution trace starts with its version line; a CPU profile is
	// gzipped.
	if b, err := os.ReadFile(tracePath); err != nil || !bytes.HasPrefix(b, []byte("go 1.")) {
		t.Errorf("-trace wrote no trace (%d bytes, %v)", len(b), err)
	}
	if b, err := os.ReadFile(profilePath); err != nil || !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		t.Errorf("-cpuprofile wrote no profile (%d bytes, %v)", len(b), err)
	}
	if b, err := os.ReadFile(memPath); err != nil || !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		t.Errorf("-memprofile wrote no profile (%d bytes, %v)", len(b), err)
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
		want    Config
	}{
		{name: "ShouldTakeTheIssuesDefaults", want: Config{Duration: 5 * time.Second, Users: 10000,
			Backends: []string{"sqlite", "postgres"}, Concurrency: []int{1, 16, 64}}},
		{name: "ShouldTakeListsWithSpaces", args: []string{"-backends", " postgres ", "-concurrency", "2, 8,"},
			want: Config{Duration: 5 * time.Second, Users: 10000, Backends: []string{"postgres"}, Concurrency: []int{2, 8}}},
		{name: "ShouldRejectAnUnknownBackend", args: []string{"-backends", "mysql"}, wantErr: `unknown backend "mysql"`},
		{name: "ShouldRejectNoLevel", args: []string{"-concurrency", ","}, wantErr: "names no level"},
		{name: "ShouldRejectALevelOfZero", args: []string{"-concurrency", "0"}, wantErr: "not between 1 and 4096"},
		{name: "ShouldRejectNoUsers", args: []string{"-users", "0"}, wantErr: "at least 1"},
		{name: "ShouldRejectAZeroDuration", args: []string{"-duration", "0s"}, wantErr: "must be positive"},
		{name: "ShouldRejectAnArgument", args: []string{"extra"}, wantErr: `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			got, err := parseFlags(tt.args, &stderr)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Duration != tt.want.Duration || got.Users != tt.want.Users ||
				strings.Join(got.Backends, ",") != strings.Join(tt.want.Backends, ",") ||
				len(got.Concurrency) != len(tt.want.Concurrency) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			for i := range got.Concurrency {
				if got.Concurrency[i] != tt.want.Concurrency[i] {
					t.Fatalf("got %+v, want %+v", got, tt.want)
				}
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	ms := func(n ...int) []time.Duration {
		var ds []time.Duration
		for _, v := range n {
			ds = append(ds, time.Duration(v)*time.Millisecond)
		}
		return ds
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		q      float64
		want   time.Duration
	}{
		{"ShouldBeZeroWithoutSamples", nil, 0.95, 0},
		{"ShouldTakeTheOnlySample", ms(7), 0.99, 7 * time.Millisecond},
		{"ShouldTakeTheNearestRankP50", ms(hundred...), 0.50, 50 * time.Millisecond},
		{"ShouldTakeTheNearestRankP95", ms(hundred...), 0.95, 95 * time.Millisecond},
		{"ShouldRoundTheRankUp", ms(1, 2, 3), 0.50, 2 * time.Millisecond},
		{"ShouldTakeTheLargestAtP100", ms(1, 2, 3), 1, 3 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.sorted, tt.q); got != tt.want {
				t.Errorf("percentile(%v) = %v, want %v", tt.q, got, tt.want)
			}
		})
	}
}
