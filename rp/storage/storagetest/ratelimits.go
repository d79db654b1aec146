package storagetest

import (
	"testing"
	"time"

	"github.com/keydesk/keydesk/rp/ratelimit"
	"github.com/keydesk/keydesk/rp/storage"
)

var rateLimitTests = []test{
	{"RateLimitStartsZeroRoundTripsAndIsSwept", testRateLimitRoundTrip},
	{"RateLimitRefusesBadKeys", testRateLimitRefusals},
	{"RateLimitLetsRacersTakeExactlyTheBurst", func(t *testing.T, s storage.Store) {
		testRateLimitRace(t, [2]storage.Store{s, s})
	}},
}

func testRateLimitRoundTrip(t *testing.T, s storage.Store) {
	read := func(key string) (tat time.Time) {
		t.Helper()
		mustTx(t, s, func(tx storage.Tx) (err error) { tat, err = tx.RateLimit(key); return err })
		return tat
	}
	if tat := read("user:alice"); !tat.IsZero() {
		t.Fatalf("a new key's tat is %v, want the zero time", tat)
	}
	// Stored to the microsecond, rounded up.
	tat := t0.Add(time.Minute + 1500*time.Nanosecond)
	mustTx(t, s, func(tx storage.Tx) error { return tx.SetRateLimit("user:alice", tat) })
	if got, want := read("user:alice"), t0.Add(time.Minute+2*time.Microsecond); !got.Equal(want) {
		t.Errorf("tat read back %v, want %v", got, want)
	}
	if tat := read("user:bob"); !tat.IsZero() {
		t.Errorf("another key's tat is %v, want the zero time", tat)
	}
	// A bucket that has refilled is swept; one that has not stays.
	mustTx(t, s, func(tx storage.Tx) error { return tx.SetRateLimit("user:carol", t0.Add(time.Hour)) })
	mustTx(t, s, func(tx storage.Tx) error { _, err := tx.DeleteExpired(t0.Add(2 * time.Minute)); return err })
	if tat := read("user:alice"); !tat.IsZero() {
		t.Errorf("after the sweep alice's tat is %v, want the zero time", tat)
	}
	if got := read("user:carol"); !got.Equal(t0.Add(time.Hour)) {
		t.Errorf("after the sweep carol's tat is %v, want it kept", got)
	}
}

func testRateLimitRefusals(t *testing.T, s storage.Store) {
	long := string(make([]byte, 513))
	for _, key := range []string{"", long} {
		err := s.Tx(t.Context(), func(tx storage.Tx) error { _, err := tx.RateLimit(key); return err })
		if err == nil {
			t.Errorf("RateLimit(%d bytes) succeeded", len(key))
		}
		if err := s.Tx(t.Context(), func(tx storage.Tx) error { return tx.SetRateLimit(key, t0) }); err == nil {
			t.Errorf("SetRateLimit(%d bytes) succeeded", len(key))
		}
	}
}

// testRateLimitRace has Racers requests, spread over the stores, take
// from one bucket of burst 5 at one moment: exactly 5 may pass, however
// many instances they go through.
func testRateLimitRace(t *testing.T, s [2]storage.Store) {
	const burst = 5
	l, err := ratelimit.New(ratelimit.Config{Rate: 1.0 / 60, Burst: burst})
	if err != nil {
		t.Fatal(err)
	}
	allowed := make([]bool, Racers)
	errs := race(Racers, func(i int) error {
		return s[i%2].Tx(t.Context(), func(tx storage.Tx) error {
			allowed[i] = false
			tat, err := tx.RateLimit("user:alice")
			if err != nil {
				return err
			}
			next, ok, _ := l.Take("user:alice", tat, t0)
			if !ok {
				return nil
			}
			allowed[i] = true
			return tx.SetRateLimit("user:alice", next)
		})
	})
	wantEqual(t, "outcomes", tally(errs), map[string]int{"ok": Racers})
	n := 0
	for _, ok := range allowed {
		if ok {
			n++
		}
	}
	if n != burst {
		t.Errorf("%d of %d racers were let through, want the burst (%d)", n, Racers, burst)
	}
}
