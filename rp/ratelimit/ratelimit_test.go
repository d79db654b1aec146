package ratelimit_test

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keydesk/keydesk/rp/ratelimit"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func newLimiter(t testing.TB, cfg ratelimit.Config) *ratelimit.Limiter {
	t.Helper()
	l, err := ratelimit.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// call is one Allow in a scripted sequence.
type call struct {
	key       string
	at        time.Duration // since t0
	wantOK    bool
	wantRetry time.Duration // checked when !wantOK
}

func TestAllow(t *testing.T) {
	tests := []struct {
		name  string
		rate  float64
		burst int
		calls []call
	}{
		{
			name: "BurstThenRefuse", rate: 1, burst: 3,
			calls: []call{
				{"ip:a", 0, true, 0},
				{"ip:a", 0, true, 0},
				{"ip:a", 0, true, 0},
				{"ip:a", 0, false, time.Second},
				{"ip:a", 0, false, time.Second},
			},
		},
		{
			name: "RefillOverTime", rate: 2, burst: 2,
			calls: []call{
				{"ip:a", 0, true, 0},
				{"ip:a", 0, true, 0},
				{"ip:a", 0, false, 500 * time.Millisecond},
				{"ip:a", 500 * time.Millisecond, true, 0},
				{"ip:a", 500 * time.Millisecond, false, 500 * time.Millisecond},
				{"ip:a", 10 * time.Second, true, 0},
				{"ip:a", 10 * time.Second, true, 0},
				{"ip:a", 10 * time.Second, false, 500 * time.Millisecond},
			},
		},
		{
			name: "RetryAfterShrinksAsTimePasses", rate: 0.1, burst: 1,
			calls: []call{
				{"user:alice", 0, true, 0},
				{"user:alice", time.Second, false, 9 * time.Second},
				{"user:alice", 7500 * time.Millisecond, false, 2500 * time.Millisecond},
				{"user:alice", 10 * time.Second, true, 0},
			},
		},
		{
			name: "WaitingRetryAfterIsEnough", rate: 3, burst: 1,
			calls: []call{
				{"ip:a", 0, true, 0},
				{"ip:a", 0, false, 333333333},
				{"ip:a", 333333333, true, 0},
			},
		},
		{
			name: "KeysAreIndependent", rate: 1, burst: 1,
			calls: []call{
				{"ip:a", 0, true, 0},
				{"ip:a", 0, false, time.Second},
				{"ip:b", 0, true, 0},
				{"user:a", 0, true, 0},
				{"ip:b", 0, false, time.Second},
			},
		},
		{
			name: "ClockGoingBackwardsMintsNoTokens", rate: 1, burst: 1,
			calls: []call{
				{"ip:a", 5 * time.Second, true, 0},
				{"ip:a", 0, false, 6 * time.Second},
				{"ip:a", 5 * time.Second, false, time.Second},
				{"ip:a", 6 * time.Second, true, 0},
			},
		},
		{
			name: "RefusalsTakeNoTokens", rate: 1, burst: 1,
			calls: []call{
				{"ip:a", 0, true, 0},
				{"ip:a", 100 * time.Millisecond, false, 900 * time.Millisecond},
				{"ip:a", 200 * time.Millisecond, false, 800 * time.Millisecond},
				{"ip:a", time.Second, true, 0},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLimiter(t, ratelimit.Config{Rate: tt.rate, Burst: tt.burst})
			for i, c := range tt.calls {
				ok, retry := l.Allow(c.key, t0.Add(c.at))
				if ok != c.wantOK {
					t.Fatalf("call %d (%s at %v): ok = %v, want %v", i, c.key, c.at, ok, c.wantOK)
				}
				if ok && retry != 0 {
					t.Errorf("call %d: allowed with retryAfter %v, want 0", i, retry)
				}
				if !ok && retry != c.wantRetry {
					t.Errorf("call %d (%s at %v): retryAfter = %v, want %v", i, c.key, c.at, retry, c.wantRetry)
				}
			}
		})
	}
}

func TestSustainedRateIsRespected(t *testing.T) {
	// Hammering every millisecond for 10 s at 5/s with burst 3 lets
	// through exactly the burst plus one token per 200 ms.
	l := newLimiter(t, ratelimit.Config{Rate: 5, Burst: 3})
	allowed := 0
	for ms := range 10_000 {
		if ok, _ := l.Allow("ip:a", t0.Add(time.Duration(ms)*time.Millisecond)); ok {
			allowed++
		}
	}
	if want := 3 + 49; allowed != want { // tokens at 200 ms, 400 ms, … 9800 ms
		t.Errorf("allowed %d requests, want %d", allowed, want)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  ratelimit.Config
	}{
		{"ShouldRejectZeroRate", ratelimit.Config{Burst: 1}},
		{"ShouldRejectNegativeRate", ratelimit.Config{Rate: -1, Burst: 1}},
		{"ShouldRejectNaNRate", ratelimit.Config{Rate: nan(), Burst: 1}},
		{"ShouldRejectRateAboveOnePerNanosecond", ratelimit.Config{Rate: 2e9, Burst: 1}},
		{"ShouldRejectZeroBurst", ratelimit.Config{Rate: 1}},
		{"ShouldRejectNegativeMaxKeys", ratelimit.Config{Rate: 1, Burst: 1, MaxKeys: -1}},
		{"ShouldRejectCenturyRefill", ratelimit.Config{Rate: 1e-10, Burst: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := ratelimit.New(tt.cfg)
			if !errors.Is(err, ratelimit.ErrInvalidConfig) {
				t.Fatalf("New(%+v) = %v, %v; want ErrInvalidConfig", tt.cfg, l, err)
			}
		})
	}
}

func nan() float64 {
	zero := 0.0
	return zero / zero
}

func TestEviction(t *testing.T) {
	t.Run("KeyCountNeverExceedsMaxKeys", func(t *testing.T) {
		for _, maxKeys := range []int{1, 10, 5000, 20_000} { // single-shard and sharded
			l := newLimiter(t, ratelimit.Config{Rate: 1, Burst: 5, MaxKeys: maxKeys})
			for i := range 3 * maxKeys {
				l.Allow("ip:"+strconv.Itoa(i), t0)
				if n := l.Len(); n > maxKeys {
					t.Fatalf("MaxKeys %d: %d keys tracked after %d new keys", maxKeys, n, i+1)
				}
			}
		}
	})
	t.Run("LeastRecentlyUsedGoesFirst", func(t *testing.T) {
		l := newLimiter(t, ratelimit.Config{Rate: 1, Burst: 1, MaxKeys: 3})
		for _, k := range []string{"a", "b", "c"} {
			l.Allow(k, t0)
		}
		l.Allow("a", t0) // refused, but a is now the most recent
		l.Allow("d", t0) // evicts b
		if ok, _ := l.Allow("a", t0); ok {
			t.Error("a was evicted although recently used")
		}
		if ok, _ := l.Allow("c", t0); ok {
			t.Error("c was evicted although b was older")
		}
		if ok, _ := l.Allow("b", t0); !ok {
			t.Error("b kept its empty bucket; want it evicted as least recently used")
		}
	})
	t.Run("FullBucketsAreDroppedWhenIdle", func(t *testing.T) {
		l := newLimiter(t, ratelimit.Config{Rate: 10, Burst: 5, MaxKeys: 1000})
		for i := range 100 {
			l.Allow("ip:"+strconv.Itoa(i), t0)
		}
		if n := l.Len(); n != 100 {
			t.Fatalf("%d keys tracked, want 100", n)
		}
		// After one token's refill every bucket is full again (one token
		// was taken), and each later call sweeps some of them.
		later := t0.Add(100 * time.Millisecond)
		for range 30 {
			l.Allow("ip:busy", later)
		}
		if n := l.Len(); n != 1 {
			t.Errorf("%d keys tracked after 30 sweeping calls, want only the busy one", n)
		}
	})
	t.Run("EvictionKeepsBusyKeysLimited", func(t *testing.T) {
		l := newLimiter(t, ratelimit.Config{Rate: 1, Burst: 1, MaxKeys: 100})
		l.Allow("ip:attacker", t0)
		for i := range 1000 {
			l.Allow("ip:"+strconv.Itoa(i), t0)
			if ok, _ := l.Allow("ip:attacker", t0); ok {
				t.Fatalf("attacker allowed again after %d other keys", i+1)
			}
		}
	})
}

func TestOnRefuseSeesEachRefusal(t *testing.T) {
	var mu sync.Mutex
	var refused []string
	l := newLimiter(t, ratelimit.Config{Rate: 1, Burst: 1, OnRefuse: func(key string) {
		mu.Lock()
		defer mu.Unlock()
		refused = append(refused, key)
	}})
	for _, k := range []string{"ip:a", "ip:a", "ip:b", "ip:a", "ip:b"} {
		l.Allow(k, t0)
	}
	if got, want := fmt.Sprint(refused), "[ip:a ip:a ip:b]"; got != want {
		t.Errorf("OnRefuse saw %s, want %s", got, want)
	}
}

func TestConcurrentAllowGrantsExactlyTheBurst(t *testing.T) {
	const burst, goroutines, calls = 50, 16, 100
	for _, maxKeys := range []int{0, 100} { // sharded and single-shard
		var refusals atomic.Int64
		l := newLimiter(t, ratelimit.Config{Rate: 1, Burst: burst, MaxKeys: maxKeys, OnRefuse: func(string) { refusals.Add(1) }})
		var allowed [4]atomic.Int64
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				for i := range calls {
					k := (g + i) % len(allowed)
					if ok, _ := l.Allow("user:"+strconv.Itoa(k), t0); ok {
						allowed[k].Add(1)
					}
				}
			})
		}
		wg.Wait()
		for k := range allowed {
			if got := allowed[k].Load(); got != burst {
				t.Errorf("MaxKeys %d, key %d: %d allowed, want exactly %d", maxKeys, k, got, burst)
			}
		}
		if got, want := refusals.Load(), int64(goroutines*calls-len(allowed)*burst); got != want {
			t.Errorf("MaxKeys %d: OnRefuse called %d times, want %d", maxKeys, got, want)
		}
	}
}

func BenchmarkAllowParallel(b *testing.B) {
	for _, bc := range []struct {
		name string
		keys int
	}{
		{"OneHotKey", 1},
		{"1kKeys", 1000},
		{"1MKeysOverCap", 1 << 20},
	} {
		b.Run(bc.name, func(b *testing.B) {
			l := newLimiter(b, ratelimit.Config{Rate: 10, Burst: 20}) // a per-IP limit an RP might set
			keys := make([]string, min(bc.keys, 1<<16))
			for i := range keys {
				keys[i] = "ip:198.51.100." + strconv.Itoa(i)
			}
			var seq atomic.Uint64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := int(seq.Add(1)) * 7919
				for pb.Next() {
					i++
					var key string
					if bc.keys > len(keys) {
						key = "ip:" + strconv.Itoa(i%bc.keys) // fresh keys churn the LRU
					} else {
						key = keys[i%len(keys)]
					}
					l.Allow(key, time.Now())
				}
			})
		})
	}
}

// Take on stored state behaves as Allow on the Limiter's own, step for
// step, and leaves the Limiter's buckets alone.
func TestTakeMatchesAllow(t *testing.T) {
	var refused []string
	cfg := ratelimit.Config{Rate: 0.5, Burst: 3, OnRefuse: func(k string) { refused = append(refused, k) }}
	take, allow := newLimiter(t, cfg), newLimiter(t, ratelimit.Config{Rate: 0.5, Burst: 3})
	var tat time.Time // a key never seen
	for i, at := range []time.Duration{0, 0, 0, 0, time.Second, 2 * time.Second, 2 * time.Second, 10 * time.Second, 10 * time.Second} {
		now := t0.Add(at)
		next, ok, wait := take.Take("k", tat, now)
		wantOK, wantWait := allow.Allow("k", now)
		if ok != wantOK || wait != wantWait {
			t.Fatalf("step %d at +%v: Take = %v, %v; Allow = %v, %v", i, at, ok, wait, wantOK, wantWait)
		}
		if ok {
			tat = next
		} else if !next.Equal(tat) {
			t.Fatalf("step %d: a refusal moved the arrival time from %v to %v", i, tat, next)
		}
	}
	if take.Len() != 0 {
		t.Errorf("Take created %d buckets in the Limiter", take.Len())
	}
	// Refused: the fourth at once, at +1s, the second at +2s.
	if len(refused) != 3 || refused[0] != "k" {
		t.Errorf("OnRefuse saw %q, want the three refusals", refused)
	}
}
