package ratelimit_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keydesk/keydesk/rp/ratelimit"
)

// fakeClock is a settable clock for Config.Now.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(t0.UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	_, _ = io.WriteString(w, "ok")
})

func headerKey(r *http.Request) string { return r.Header.Get("X-Test-Key") }

func get(h http.Handler, key string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "/v1/login/begin", nil)
	if key != "" {
		r.Header.Set("X-Test-Key", key)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestMiddleware(t *testing.T) {
	tests := []struct {
		name           string
		rate           float64
		burst          int
		advance        time.Duration // before the refused request
		wantRetryAfter string
	}{
		{"ShouldRoundRetryAfterUpToWholeSeconds", 1.0 / 1.5, 1, 0, "2"},
		{"ShouldAnswerAtLeastOneSecond", 100, 1, 0, "1"},
		{"ShouldCountDownRetryAfter", 0.1, 1, 3 * time.Second, "7"},
		{"ShouldRoundAPartialSecondUp", 0.1, 1, 2500 * time.Millisecond, "8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			var refused []string
			l := newLimiter(t, ratelimit.Config{Rate: tt.rate, Burst: tt.burst, Now: clk.Now,
				OnRefuse: func(k string) { refused = append(refused, k) }})
			h := ratelimit.Middleware(l, headerKey, okHandler)
			if w := get(h, "ip:a"); w.Code != http.StatusOK || w.Body.String() != "ok" {
				t.Fatalf("first request: %d %q, want 200 ok", w.Code, w.Body)
			}
			clk.Advance(tt.advance)
			w := get(h, "ip:a")
			if w.Code != http.StatusTooManyRequests {
				t.Fatalf("second request: status %d, want 429", w.Code)
			}
			if got := w.Header().Get("Retry-After"); got != tt.wantRetryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tt.wantRetryAfter)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			var body struct{ Error, Message string }
			dec := json.NewDecoder(w.Body)
			dec.DisallowUnknownFields()
			if err := dec.Decode(&body); err != nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
			if body.Error != "rate_limited" || !strings.Contains(body.Message, tt.wantRetryAfter+" s") {
				t.Errorf("body = %+v, want error rate_limited and a message naming %s s", body, tt.wantRetryAfter)
			}
			if len(refused) != 1 || refused[0] != "ip:a" {
				t.Errorf("OnRefuse saw %q, want [ip:a]", refused)
			}
		})
	}
}

func TestMiddlewareLetsThroughAfterRetryAfter(t *testing.T) {
	clk := newFakeClock()
	l := newLimiter(t, ratelimit.Config{Rate: 0.5, Burst: 2, Now: clk.Now})
	h := ratelimit.Middleware(l, headerKey, okHandler)
	get(h, "user:alice")
	get(h, "user:alice")
	w := get(h, "user:alice")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "2" {
		t.Fatalf("third request: %d Retry-After %q, want 429 and 2", w.Code, w.Header().Get("Retry-After"))
	}
	if w := get(h, "user:bob"); w.Code != http.StatusOK {
		t.Errorf("another key: status %d, want 200", w.Code)
	}
	clk.Advance(2 * time.Second)
	if w := get(h, "user:alice"); w.Code != http.StatusOK {
		t.Errorf("after Retry-After: status %d, want 200", w.Code)
	}
}

func TestMiddlewareSkipsEmptyKey(t *testing.T) {
	l := newLimiter(t, ratelimit.Config{Rate: 1, Burst: 1, Now: newFakeClock().Now})
	h := ratelimit.Middleware(l, headerKey, okHandler)
	for i := range 5 {
		if w := get(h, ""); w.Code != http.StatusOK {
			t.Fatalf("request %d without a key: status %d, want 200", i, w.Code)
		}
	}
	if n := l.Len(); n != 0 {
		t.Errorf("%d keys tracked for unkeyed requests, want 0", n)
	}
}

var proxies = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("fd00::/8"),
}

func TestClientIP(t *testing.T) {
	tests := []struct {
		name       string
		remoteAddr string
		xff        []string
		want       string
	}{
		{"ShouldUsePeerWithoutProxies", "203.0.113.7:51234", nil, "203.0.113.7"},
		{"ShouldRefuseSpoofedXFFFromUntrustedPeer", "203.0.113.7:51234", []string{"198.51.100.1"}, "203.0.113.7"},
		{"ShouldTakeRightmostUntrustedBehindProxy", "10.0.0.2:443", []string{"198.51.100.1, 203.0.113.7"}, "203.0.113.7"},
		{"ShouldIgnoreClientPrependedSpoof", "10.0.0.2:443", []string{"1.2.3.4, 203.0.113.7, 10.0.0.3"}, "203.0.113.7"},
		{"ShouldReadSeveralXFFHeadersInOrder", "10.0.0.2:443", []string{"1.2.3.4", "203.0.113.7", "10.1.1.1"}, "203.0.113.7"},
		{"ShouldUsePeerWhenProxySentNoXFF", "10.0.0.2:443", nil, "10.0.0.2"},
		{"ShouldUseLeftmostWhenAllHopsTrusted", "10.0.0.2:443", []string{"10.9.9.9, 10.0.0.3"}, "10.9.9.9"},
		{"ShouldStopAtMalformedEntry", "10.0.0.2:443", []string{"203.0.113.7, garbage, 10.0.0.3"}, "10.0.0.3"},
		{"ShouldStopAtEmptyEntry", "10.0.0.2:443", []string{"203.0.113.7,,"}, "10.0.0.2"},
		{"ShouldAcceptPortsAndBracketsInXFF", "[fd00::1]:443", []string{"[2001:db8::5]:8080"}, "2001:db8::5"},
		{"ShouldUnmapIPv4MappedPeer", "[::ffff:10.0.0.2]:443", []string{"::ffff:203.0.113.7"}, "203.0.113.7"},
		{"ShouldDropZone", "[fe80::1%eth0]:443", nil, "fe80::1"},
		{"ShouldReturnInvalidForUnparsablePeer", "@", []string{"203.0.113.7"}, "invalid IP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.remoteAddr
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := ratelimit.ClientIP(r, proxies).String(); got != tt.want {
				t.Errorf("ClientIP = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestIPKey(t *testing.T) {
	tests := []struct {
		name       string
		remoteAddr string
		want       string
	}{
		{"ShouldKeyIPv4ByAddress", "203.0.113.7:1", "ip:203.0.113.7"},
		{"ShouldKeyIPv6ByItsSlash64", "[2001:db8:1:2:aaaa::1]:1", "ip:2001:db8:1:2::/64"},
		{"ShouldKeyMappedIPv4AsIPv4", "[::ffff:203.0.113.7]:1", "ip:203.0.113.7"},
		{"ShouldShareOneKeyForUnparsablePeers", "@", "ip:unknown"},
	}
	key := ratelimit.IPKey(nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.remoteAddr
			if got := key(r); got != tt.want {
				t.Errorf("key = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestMiddlewareByIPResistsXFFSpoofing(t *testing.T) {
	l := newLimiter(t, ratelimit.Config{Rate: 1, Burst: 1, Now: newFakeClock().Now})
	h := ratelimit.Middleware(l, ratelimit.IPKey(proxies), okHandler)
	for i, xff := range []string{"", "198.51.100.1", "198.51.100.2"} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = "203.0.113.7:4000"
		if xff != "" {
			r.Header.Set("X-Forwarded-For", xff)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if want := map[bool]int{true: 200, false: 429}[i == 0]; w.Code != want {
			t.Errorf("request %d with X-Forwarded-For %q: status %d, want %d", i, xff, w.Code, want)
		}
	}
}
