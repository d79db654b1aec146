package bench

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keydesk/keydesk/rp/api"
	"github.com/keydesk/keydesk/rp/rptest"
	"github.com/keydesk/keydesk/rp/server"
	"github.com/keydesk/keydesk/rp/storage"
	"github.com/keydesk/keydesk/rp/storage/pgtest"
	"github.com/keydesk/keydesk/rp/storage/storeopen"
)

// levelResult is one backend at one concurrency.
type levelResult struct {
	backend     string
	concurrency int
	// n ceremonies began in the measured window and succeeded, in elapsed.
	n       int
	elapsed time.Duration
	// latencies are each measured ceremony's begin plus finish round
	// trips, sorted.
	latencies []time.Duration
	// sign is the software keys' mean time to answer the request options.
	sign time.Duration
	// cpu is the process's CPU time (user and system) in the measured
	// window: server, keys and load generator together.
	cpu    time.Duration
	errors int
	// firstErrors are the first few failures, for the report.
	firstErrors []string
}

// cpuPerCeremony is the process's CPU time per measured ceremony: less
// at the mercy of other tenants of the machine than the rate.
func (r *levelResult) cpuPerCeremony() time.Duration {
	if r.n == 0 {
		return 0
	}
	return r.cpu / time.Duration(r.n)
}

func (r *levelResult) perSecond() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.n) / r.elapsed.Seconds()
}

// percentile is the nearest-rank percentile q (0 < q <= 1) of the
// latencies.
func (r *levelResult) percentile(q float64) time.Duration {
	return percentile(r.latencies, q)
}

func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	// The rank is ceil(n*q), allowing for q*n landing a hair above an
	// integer in floating point.
	i := int(math.Ceil(float64(len(sorted))*q-1e-9)) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// runBackend seeds a fresh database of the backend, serves the RP on a
// loopback port and runs every level against it.
func runBackend(ctx context.Context, cfg Config, backend string, p *population, stdout, stderr io.Writer) ([]levelResult, error) {
	dsn, cleanup, err := openDatabase(backend, stdout)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := cleanup(); err != nil {
			fmt.Fprintf(stderr, "rpbench: %s: clean up: %v\n", backend, err)
		}
	}()
	st, err := storeopen.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer st.Close()

	start := time.Now()
	txs, err := p.store(ctx, st)
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	fmt.Fprintf(stdout, "%s: stored %d users with their credentials in %d transactions in %v\n",
		backend, len(p.users), txs, time.Since(start).Round(time.Millisecond))

	url, stop, err := serve(st, stderr)
	if err != nil {
		return nil, err
	}
	defer stop()

	hc := &http.Client{Transport: &http.Transport{
		MaxIdleConns:        slices.Max(cfg.Concurrency),
		MaxIdleConnsPerHost: slices.Max(cfg.Concurrency),
		IdleConnTimeout:     time.Minute,
	}, Timeout: time.Minute}
	defer hc.CloseIdleConnections()

	var results []levelResult
	for _, c := range cfg.Concurrency {
		r := runLevel(ctx, p, &rptest.Client{BaseURL: url, HTTP: hc}, backend, c, cfg.warmup(), cfg.Duration)
		results = append(results, r)
		fmt.Fprintf(stdout, "%s: concurrency %d: %d ceremonies in %v: %.0f/s, p50 %s p95 %s p99 %s ms, CPU %s us/ceremony (key signing %s ms mean), %d errors\n",
			backend, c, r.n, r.elapsed.Round(time.Millisecond), r.perSecond(),
			ms(r.percentile(0.50)), ms(r.percentile(0.95)), ms(r.percentile(0.99)), us(r.cpuPerCeremony()), ms(r.sign), r.errors)
		for _, e := range r.firstErrors {
			fmt.Fprintf(stdout, "%s: concurrency %d: error: %s\n", backend, c, e)
		}
		if err := ctx.Err(); err != nil {
			return results, err
		}
	}
	return results, nil
}

// openDatabase makes an empty database of the backend: a SQLite file in
// a temporary directory, or a database on a throwaway PostgreSQL server.
// cleanup removes it.
func openDatabase(backend string, stdout io.Writer) (dsn string, cleanup func() error, err error) {
	switch backend {
	case BackendSQLite:
		dir, err := os.MkdirTemp("", "rpbench-")
		if err != nil {
			return "", nil, err
		}
		return "sqlite:" + filepath.Join(dir, "rp.db"), func() error { return os.RemoveAll(dir) }, nil
	case BackendPostgres:
		start := time.Now()
		srv, stop, err := pgtest.StartMain()
		if err != nil {
			return "", nil, err
		}
		fmt.Fprintf(stdout, "%s: started a throwaway PostgreSQL server in %v\n", backend, time.Since(start).Round(time.Millisecond))
		dsn, drop, err := newDatabase(srv)
		if err != nil {
			stop()
			return "", nil, err
		}
		return dsn, func() error {
			err := drop()
			stop() // reports its own errors on stderr
			return err
		}, nil
	}
	return "", nil, fmt.Errorf("unknown backend %q", backend)
}

// serve starts the RP on st on a loopback port, with rate limits far above
// what the benchmark sends, and returns its base URL.
func serve(st storage.Store, stderr io.Writer) (url string, stop func(), err error) {
	secret := make([]byte, 32)
	crand.Read(secret)
	s, err := server.New(server.Config{
		RPID: rpID, RPDisplayName: rpDisplayName, Origins: []string{origin},
		Store: st, Secret: secret, CeremonyTTL: ceremonyTTL,
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		IPRate: 1e9, IPBurst: 1e9, AccountRate: 1e9, AccountBurst: 1e9,
	})
	if err != nil {
		return "", nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		hs.Serve(l)
	}()
	return "http://" + l.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		hs.Shutdown(ctx)
		<-done
	}, nil
}

// maxReportedErrors bounds the failures a level keeps the text of.
const maxReportedErrors = 5

// runLevel runs c workers for warmup and then d, each signing in as
// random users of its own key (workers share keys only when there are
// fewer keys with users than workers; a user is never in two ceremonies
// at once, so that no two sign-ins race on one signature counter). It
// measures the ceremonies begun within d.
func runLevel(ctx context.Context, p *population, client *rptest.Client, backend string, c int, warmup, d time.Duration) levelResult {
	keys := 0
	for _, us := range p.byKey {
		if len(us) > 0 {
			keys++
		}
	}
	busy := make([]atomic.Bool, len(p.users))
	measureFrom := time.Now().Add(warmup)
	measureTo := measureFrom.Add(d)

	var (
		mu  sync.Mutex
		res = levelResult{backend: backend, concurrency: c}
		// last is when the last measured ceremony ended.
		last     time.Time
		signSum  time.Duration
		signsRun int
	)
	var cpuFrom, cpuTo atomic.Int64
	tFrom := time.AfterFunc(time.Until(measureFrom), func() { cpuFrom.Store(int64(processCPU())) })
	tTo := time.AfterFunc(time.Until(measureTo), func() { cpuTo.Store(int64(processCPU())) })
	var wg sync.WaitGroup
	for w := range c {
		wg.Go(func() {
			k := w % keys
			key, mine := p.keys[k], p.byKey[k]
			var (
				lat       []time.Duration
				end       time.Time
				sign      time.Duration
				signs     int
				failures  int
				firstErrs []string
			)
			for ctx.Err() == nil {
				i, ok := claim(busy, mine, measureTo)
				if !ok {
					break
				}
				started := time.Now()
				if !started.Before(measureTo) {
					busy[i].Store(false)
					break
				}
				l, s, err := ceremony(client, key, p.users[i].u.Name)
				busy[i].Store(false)
				if err != nil {
					failures++
					if len(firstErrs) < maxReportedErrors {
						firstErrs = append(firstErrs, fmt.Sprintf("%s: %v", p.users[i].u.Name, err))
					}
					continue
				}
				sign += s
				signs++
				if !started.Before(measureFrom) {
					lat = append(lat, l)
					end = time.Now()
				}
			}
			mu.Lock()
			defer mu.Unlock()
			res.latencies = append(res.latencies, lat...)
			if end.After(last) {
				last = end
			}
			signSum += sign
			signsRun += signs
			res.errors += failures
			for _, e := range firstErrs {
				if len(res.firstErrors) < maxReportedErrors {
					res.firstErrors = append(res.firstErrors, e)
				}
			}
		})
	}
	wg.Wait()
	// The workers stop at measureTo, and may see it pass before the
	// timer's goroutine has run: a timer stopped after its time reads
	// now, a moment late. One stopped before it (the context ended
	// early) leaves no window to speak of.
	now := time.Now()
	if tFrom.Stop() {
		cpuFrom.Store(int64(processCPU()))
	}
	if tTo.Stop() {
		cpuTo.Store(int64(processCPU()))
	}
	if ctx.Err() != nil || now.Before(measureTo) {
		cpuFrom.Store(0)
		cpuTo.Store(0)
	}
	res.cpu = time.Duration(cpuTo.Load() - cpuFrom.Load())
	slices.Sort(res.latencies)
	res.n = len(res.latencies)
	if res.n > 0 {
		res.elapsed = last.Sub(measureFrom)
	}
	if signsRun > 0 {
		res.sign = signSum / time.Duration(signsRun)
	}
	return res
}

// claim marks a random user of mine busy and returns it; false once the
// time is past until with every user of mine busy.
func claim(busy []atomic.Bool, mine []int, until time.Time) (int, bool) {
	for {
		for range len(mine) {
			i := mine[rand.IntN(len(mine))]
			if busy[i].CompareAndSwap(false, true) {
				return i, true
			}
		}
		if !time.Now().Before(until) {
			return 0, false
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// ceremony signs in as name with key: POST /v1/login/begin, the key's
// answer to the request options, POST /v1/login/finish. It returns the
// two round trips' time and the key's.
func ceremony(c *rptest.Client, key *rptest.Key, name string) (roundTrips, sign time.Duration, err error) {
	t0 := time.Now()
	var begin api.CeremonyBegin
	if _, err := c.Do("POST", api.Version+"/login/begin", api.LoginBeginRequest{Username: name}, &begin); err != nil {
		return 0, 0, fmt.Errorf("begin: %w", err)
	}
	t1 := time.Now()
	cred, err := key.Get(begin.PublicKey)
	if err != nil {
		return 0, 0, fmt.Errorf("key: %w", err)
	}
	t2 := time.Now()
	var sess api.Session
	if _, err := c.Do("POST", api.Version+"/login/finish", api.LoginFinishRequest{CeremonyID: begin.CeremonyID, Credential: cred}, &sess); err != nil {
		return 0, 0, fmt.Errorf("finish: %w", err)
	}
	t3 := time.Now()
	if sess.Token == "" || sess.User.Name != name || sess.Scope != string(storage.ScopeFull) {
		return 0, 0, errors.New("finish: the answer is not a full session for this user")
	}
	return t1.Sub(t0) + t3.Sub(t2), t2.Sub(t1), nil
}

// ms formats d in milliseconds with two decimals.
func us(d time.Duration) string { return fmt.Sprintf("%.0f", float64(d)/float64(time.Microsecond)) }

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }
