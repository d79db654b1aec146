// Package ratelimit limits how often each client key (an IP address, an
// account) may call the relying party, so one noisy or hostile client
// cannot exhaust the service or guess secrets at speed.
//
// A [Limiter] keeps one token bucket per key, implemented as GCRA (the
// generic cell rate algorithm): each bucket is a single "theoretical
// arrival time", so refill is exact integer arithmetic on durations and a
// full bucket is recognisable at a glance. Full buckets carry no
// information and are dropped; the number of keys is capped, evicting the
// least recently used. [Middleware] puts a Limiter in front of an
// [net/http.Handler], answering 429 with Retry-After, and [ClientIP] finds
// the address to key on behind trusted reverse proxies.
package ratelimit

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"sync"
	"time"
)

// DefaultMaxKeys is the key cap [New] uses when [Config.MaxKeys] is zero.
// At about 100 bytes a bucket it bounds a Limiter to roughly 10 MB.
const DefaultMaxKeys = 100_000

// shardMinKeys is the smallest MaxKeys for which buckets are spread over
// several locks; below it a single shard keeps eviction strictly LRU.
const shardMinKeys = 4096

// numShards is the number of independently locked shards of a large
// Limiter, so parallel callers on different keys rarely contend.
const numShards = 32

// ErrInvalidConfig is returned, wrapped, by [New] for a [Config] it cannot
// use.
var ErrInvalidConfig = errors.New("ratelimit: invalid config")

// Config describes a [Limiter]. The zero value is not usable: Rate and
// Burst must be set.
type Config struct {
	// Rate is the sustained number of requests per second allowed for
	// each key. It must be positive and at most 1e9.
	Rate float64
	// Burst is how many requests a key that has been quiet may make at
	// once. It must be at least 1.
	Burst int
	// MaxKeys caps the number of keys tracked at once; when a new key
	// arrives at the cap, the least recently used key is forgotten (and
	// so starts again with a full burst). Zero means [DefaultMaxKeys].
	// Set it well above the number of clients expected within one
	// refill period (Burst/Rate), or busy clients lose their state.
	MaxKeys int
	// Now is the clock [Middleware] reads; nil means [time.Now]. Tests
	// pass a fake clock. [Limiter.Allow] takes the time as an argument
	// and does not use it.
	Now func() time.Time
	// OnRefuse, if set, is called after every refused [Limiter.Allow]
	// with the refused key, outside the Limiter's locks, so a metrics
	// counter can count 429s. It must be safe for concurrent use. Keys
	// are unbounded: do not use one as a metric label.
	OnRefuse func(key string)
}

// Limiter is a set of per-key token buckets with bounded memory. It is
// safe for concurrent use. Create one with [New].
type Limiter struct {
	interval int64 // nanoseconds between tokens (1/Rate)
	tau      int64 // burst tolerance: (Burst-1) * interval
	now      func() time.Time
	onRefuse func(string)
	seed     maphash.Seed
	shards   []shard
}

// New checks cfg, fills its defaults and returns a Limiter. The error
// wraps [ErrInvalidConfig].
func New(cfg Config) (*Limiter, error) {
	if math.IsNaN(cfg.Rate) || cfg.Rate <= 0 || cfg.Rate > 1e9 {
		return nil, fmt.Errorf("%w: rate %v per second is not in (0, 1e9]", ErrInvalidConfig, cfg.Rate)
	}
	if cfg.Burst < 1 {
		return nil, fmt.Errorf("%w: burst %d is less than 1", ErrInvalidConfig, cfg.Burst)
	}
	if cfg.MaxKeys < 0 {
		return nil, fmt.Errorf("%w: max keys %d is negative", ErrInvalidConfig, cfg.MaxKeys)
	}
	if cfg.MaxKeys == 0 {
		cfg.MaxKeys = DefaultMaxKeys
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	// Bounding the refill time keeps all arithmetic on Unix nanoseconds
	// far from overflow.
	const century = float64(100 * 365 * 24 * time.Hour)
	interval := math.Round(float64(time.Second) / cfg.Rate)
	tau := interval * float64(cfg.Burst-1)
	if interval+tau > century {
		return nil, fmt.Errorf("%w: burst %d at rate %v per second takes over a century to refill", ErrInvalidConfig, cfg.Burst, cfg.Rate)
	}
	n := 1
	if cfg.MaxKeys >= shardMinKeys {
		n = numShards
	}
	l := &Limiter{
		interval: int64(interval),
		tau:      int64(tau),
		now:      cfg.Now,
		onRefuse: cfg.OnRefuse,
		seed:     maphash.MakeSeed(),
		shards:   make([]shard, n),
	}
	for i := range l.shards {
		l.shards[i] = shard{max: cfg.MaxKeys / n, buckets: make(map[string]*bucket)}
	}
	return l, nil
}

// Allow takes one token from key's bucket at time now. It reports whether
// the request may go ahead and, when it may not, how long until it would
// be allowed. A refused request takes nothing, so a client that waits
// retryAfter is let through. Times earlier than a key's previous call mint
// no tokens.
func (l *Limiter) Allow(key string, now time.Time) (ok bool, retryAfter time.Duration) {
	t := now.UnixNano()
	s := l.shard(key)
	s.mu.Lock()
	b := s.get(key, t)
	next, ok, wait := l.step(b.tat, t)
	b.tat = next
	s.mu.Unlock()
	if !ok && l.onRefuse != nil {
		l.onRefuse(key)
	}
	return ok, wait
}

// step is GCRA: tat is when the bucket would be full again. A request is
// conforming unless that lies more than tau (the burst) in the future;
// a conforming one moves tat on by one interval, a refused one leaves it.
func (l *Limiter) step(tat, now int64) (next int64, ok bool, retryAfter time.Duration) {
	tat = max(tat, now)
	if d := tat - now; d > l.tau {
		return tat, false, time.Duration(d - l.tau)
	}
	return tat + l.interval, true, 0
}

// Take is [Limiter.Allow] for a bucket kept outside the Limiter, such as
// in a database that several instances of a service share so that their
// limits add up to one: tat is the bucket's stored theoretical arrival
// time (the zero time for a key never seen, or forgotten once tat had
// passed), and next what to store back when ok. Config.OnRefuse sees
// refusals as with Allow. The Limiter's own buckets are not touched.
func (l *Limiter) Take(key string, tat, now time.Time) (next time.Time, ok bool, retryAfter time.Duration) {
	t := now.UnixNano()
	var stored int64 // a zero tat is long past
	if !tat.IsZero() {
		stored = tat.UnixNano()
	}
	n, ok, wait := l.step(stored, t)
	if !ok && l.onRefuse != nil {
		l.onRefuse(key)
	}
	return time.Unix(0, n), ok, wait
}

// Len reports how many keys the Limiter is tracking, for tests and
// gauges. It is at most the configured MaxKeys.
func (l *Limiter) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.buckets)
		s.mu.Unlock()
	}
	return n
}

func (l *Limiter) shard(key string) *shard {
	if len(l.shards) == 1 {
		return &l.shards[0]
	}
	return &l.shards[maphash.String(l.seed, key)%uint64(len(l.shards))]
}

// bucket is one key's state, linked into its shard's recency list.
type bucket struct {
	key        string
	tat        int64 // theoretical arrival time, Unix nanoseconds
	prev, next *bucket
}

// shard is an LRU map of buckets under one lock: head is the most recently
// used bucket, tail the least.
type shard struct {
	mu      sync.Mutex
	max     int                // fixed at construction
	buckets map[string]*bucket // +checklocks:mu
	head    *bucket            // +checklocks:mu
	tail    *bucket            // +checklocks:mu
}

// sweepPerCall bounds the full buckets dropped by one call, keeping each
// call's cost constant; since a call adds at most one bucket, sweeping
// more than one per call still keeps up.
const sweepPerCall = 4

// get returns key's bucket, most recently used, creating a full one if
// needed, and drops stale buckets from the tail. Called with s.mu held.
func (s *shard) get(key string, now int64) *bucket {
	// A bucket whose arrival time has passed is full: forgetting it
	// changes nothing, because a new one starts full too.
	for i := 0; i < sweepPerCall && s.tail != nil && s.tail.tat <= now; i++ {
		s.remove(s.tail)
	}
	if b, ok := s.buckets[key]; ok {
		if b != s.head {
			s.unlink(b)
			s.pushFront(b)
		}
		return b
	}
	for len(s.buckets) >= s.max && s.tail != nil {
		s.remove(s.tail)
	}
	b := &bucket{key: key, tat: now}
	s.buckets[key] = b
	s.pushFront(b)
	return b
}

func (s *shard) remove(b *bucket) {
	s.unlink(b)
	delete(s.buckets, b.key)
}

func (s *shard) unlink(b *bucket) {
	if b.prev != nil {
		b.prev.next = b.next
	} else {
		s.head = b.next
	}
	if b.next != nil {
		b.next.prev = b.prev
	} else {
		s.tail = b.prev
	}
	b.prev, b.next = nil, nil
}

func (s *shard) pushFront(b *bucket) {
	b.next = s.head
	if s.head != nil {
		s.head.prev = b
	}
	s.head = b
	if s.tail == nil {
		s.tail = b
	}
}
