package ratelimit

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// problem is the JSON body of a 429 answer, in the shape of the RP API's
// other errors.
type problem struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// Middleware lets a request through to next only when l allows the key
// keyFunc derives from it. A refused request gets 429 Too Many Requests,
// a Retry-After header in whole seconds (rounded up, at least 1) and the
// body {"error":"rate_limited","message":"..."}; [Config.OnRefuse] sees
// every refusal. A request for which keyFunc returns "" is not limited,
// so a per-account limiter can pass anonymous requests to a per-IP one.
// Chain two Middlewares to limit by both.
func Middleware(l *Limiter, keyFunc func(*http.Request) string, next http.Handler) http.Handler {
	if l == nil || keyFunc == nil || next == nil {
		panic("ratelimit: Middleware needs a Limiter, a keyFunc and a handler")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := keyFunc(r)
		if key == "" {
			next.ServeHTTP(w, r)
			return
		}
		ok, wait := l.Allow(key, l.now())
		if ok {
			next.ServeHTTP(w, r)
			return
		}
		secs := retryAfterSeconds(wait)
		body, _ := json.Marshal(problem{
			Error:   "rate_limited",
			Message: "too many requests; retry after " + strconv.Itoa(secs) + " s",
		})
		h := w.Header()
		h.Set("Retry-After", strconv.Itoa(secs))
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write(append(body, '\n'))
	})
}

// retryAfterSeconds rounds d up to whole seconds, at least 1, since
// Retry-After has one-second resolution and 0 would invite a retry storm.
func retryAfterSeconds(d time.Duration) int {
	secs := (d + time.Second - 1) / time.Second
	return int(max(secs, 1))
}

// ClientIP returns the address of the client that sent r. It is the peer
// (r.RemoteAddr) unless the peer lies in trustedProxies; only then is
// X-Forwarded-For read, right to left, and the first address that is not
// itself a trusted proxy is the client. Anything left of that is written
// by the client and ignored, so a client cannot pick its own key. If
// every hop is trusted the left-most is returned; if a trusted proxy
// forwarded a malformed entry, the hop that forwarded it is returned.
// IPv4-mapped IPv6 addresses are unmapped and zones dropped. The result is
// invalid only when RemoteAddr itself cannot be parsed.
func ClientIP(r *http.Request, trustedProxies []netip.Prefix) netip.Addr {
	client, err := parseHop(r.RemoteAddr)
	if err != nil || !trusted(client, trustedProxies) {
		return client
	}
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		list := hops[i]
		for list != "" {
			var item string
			if j := strings.LastIndexByte(list, ','); j >= 0 {
				item, list = list[j+1:], list[:j]
			} else {
				item, list = list, ""
			}
			a, err := parseHop(strings.TrimSpace(item))
			if err != nil {
				return client
			}
			if !trusted(a, trustedProxies) {
				return a
			}
			client = a
		}
	}
	return client
}

// parseHop parses an address as found in RemoteAddr or X-Forwarded-For:
// with or without a port, IPv6 with brackets when a port is present.
func parseHop(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, err2 := netip.ParseAddrPort(s)
		if err2 != nil {
			return netip.Addr{}, err
		}
		a = ap.Addr()
	}
	return a.WithZone("").Unmap(), nil
}

func trusted(a netip.Addr, prefixes []netip.Prefix) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// IPKey returns a keyFunc for [Middleware] that keys on [ClientIP]:
// "ip:203.0.113.7" for IPv4 and, since one subscriber usually holds a
// whole IPv6 /64, "ip:2001:db8:1:2::/64" for IPv6. Requests whose address
// cannot be parsed share the key "ip:unknown" rather than going
// unlimited.
func IPKey(trustedProxies []netip.Prefix) func(*http.Request) string {
	return func(r *http.Request) string {
		a := ClientIP(r, trustedProxies)
		switch {
		case !a.IsValid():
			return "ip:unknown"
		case a.Is6():
			return "ip:" + netip.PrefixFrom(a, 64).Masked().String()
		default:
			return "ip:" + a.String()
		}
	}
}
