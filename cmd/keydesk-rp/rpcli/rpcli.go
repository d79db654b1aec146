// Package rpcli is the keydesk-rp command tree: serve the reference RP,
// bootstrap its first admin, export and verify its audit log. main stays
// thin so that the commands can be tested in-process.
package rpcli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keydesk/keydesk/rp/audit"
	"github.com/keydesk/keydesk/rp/local"
	"github.com/keydesk/keydesk/rp/mds"
	"github.com/keydesk/keydesk/rp/metrics/prom"
	"github.com/keydesk/keydesk/rp/server"
	"github.com/keydesk/keydesk/rp/storage"
	"github.com/keydesk/keydesk/rp/storage/storeopen"
	"github.com/keydesk/keydesk/rp/tracing"
)

// Usage is the command's help text.
const Usage = `usage: keydesk-rp <command> [flags]

commands:
  serve [flags]                 serve the RP API (the default command)
  bootstrap-admin --user NAME   create the first admin and print a one-time
                                enrollment code for their first key
  audit export [--out FILE]     write the audit log as JSONL
  audit verify [--head HASH] FILE
                                check an exported audit log: every entry's
                                hash and its link to the one before
  help                          show this text

serve, bootstrap-admin and audit export take:
  --db DSN          sqlite:PATH or postgres://... (default: SQLite in the
                    user data directory)
  --secret-file F   32+ random bytes keying enrollment codes and session
                    tokens, the same on every instance (default: rp.secret
                    beside a SQLite database, created if missing)
  --rp-id ID        WebAuthn RP ID (default: localhost)
  --origin URL      allowed origin, repeatable (default: http://localhost:PORT)

serve also takes:
  --listen ADDR     address to listen on (default: 127.0.0.1:8787); plain
                    HTTP only on loopback
  --tls-cert F --tls-key F
                    serve HTTPS with this certificate and key
  --trusted-proxy CIDR
                    a reverse proxy whose X-Forwarded-For is believed,
                    repeatable
  --otlp-endpoint URL
                    send traces to this OTLP/HTTP collector (default:
                    $OTEL_EXPORTER_OTLP_ENDPOINT; none: no tracing)
  --otlp-insecure   allow plain HTTP to a collector off loopback
  --trace-sample-ratio R
                    fraction of traces kept (default 1)
  --mds FILE        FIDO Metadata Service BLOB, read once at start (no
                    network): allows the "verified" attestation policy
  --mds-root PEM    the BLOB's root certificate (default: FIDO's)
  --mds-allow-expired
                    load a BLOB past its nextUpdate, with a warning
`

// DefaultListen is where serve listens with no --listen.
const DefaultListen = "127.0.0.1:8787"

// Run runs the keydesk-rp command line.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd, rest := "serve", args
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, rest = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, rest, stdout, stderr)
	case "bootstrap-admin":
		return bootstrap(ctx, rest, stdout, stderr)
	case "audit":
		return auditCmd(ctx, rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, Usage)
		return nil
	}
	fmt.Fprint(stderr, Usage)
	return fmt.Errorf("unknown command %q", cmd)
}

// multi is a repeatable string flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

// common are the flags every store-using command takes.
type common struct {
	db, secretFile, rpID string
	origins              multi
}

func (c *common) register(f *flag.FlagSet) {
	f.StringVar(&c.db, "db", "", "sqlite:PATH or postgres://...")
	f.StringVar(&c.secretFile, "secret-file", "", "file with the server secret")
	f.StringVar(&c.rpID, "rp-id", "localhost", "WebAuthn RP ID")
	f.Var(&c.origins, "origin", "allowed origin (repeatable)")
}

// open opens the store and reads the secret, with the embedded defaults
// for what is not given.
func (c *common) open(ctx context.Context, listen string) (storage.Store, server.Config, error) {
	if c.db == "" {
		// The desktop app's embedded RP (rp/local) uses the same files.
		dir, err := local.DataDir()
		if err != nil {
			return nil, server.Config{}, err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, server.Config{}, err
		}
		c.db = "sqlite:" + filepath.Join(dir, local.DBFile)
	}
	if c.secretFile == "" {
		path, ok := strings.CutPrefix(c.db, "sqlite:")
		if !ok {
			return nil, server.Config{}, errors.New("--secret-file is required with PostgreSQL: every instance needs the same secret")
		}
		c.secretFile = filepath.Join(filepath.Dir(path), local.SecretFile)
	}
	secret, err := local.LoadSecret(c.secretFile)
	if err != nil {
		return nil, server.Config{}, err
	}
	if len(c.origins) == 0 {
		_, port, _ := net.SplitHostPort(listen)
		c.origins = multi{"http://localhost:" + port}
	}
	st, err := storeopen.Open(ctx, c.db)
	if err != nil {
		return nil, server.Config{}, err
	}
	return st, server.Config{RPID: c.rpID, Origins: c.origins, Store: st, Secret: secret}, nil
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := flag.NewFlagSet("keydesk-rp serve", flag.ContinueOnError)
	f.SetOutput(stderr)
	var c common
	c.register(f)
	listen := f.String("listen", DefaultListen, "address to listen on")
	cert := f.String("tls-cert", "", "TLS certificate file")
	key := f.String("tls-key", "", "TLS key file")
	var proxies multi
	f.Var(&proxies, "trusted-proxy", "trusted reverse proxy CIDR (repeatable)")
	otlp := f.String("otlp-endpoint", os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT"), "OTLP/HTTP collector base URL for traces")
	otlpInsecure := f.Bool("otlp-insecure", false, "allow plain HTTP to a collector off loopback")
	sampleRatio := f.Float64("trace-sample-ratio", 1, "fraction of traces sampled")
	mdsFile := f.String("mds", "", "FIDO Metadata Service BLOB (a local file)")
	mdsRoot := f.String("mds-root", "", "PEM file of the BLOB's root certificate (default: FIDO's)")
	mdsAllowExpired := f.Bool("mds-allow-expired", false, "load a BLOB past its nextUpdate, with a warning")
	mdsCheck := f.Duration("mds-check-interval", time.Minute, "how often to look for a new BLOB in the --mds file (SIGHUP reloads at once)")
	if err := f.Parse(args); err != nil {
		return err
	}
	tls := *cert != "" || *key != ""
	if tls && (*cert == "" || *key == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	if ap, err := netip.ParseAddrPort(ln.Addr().String()); !tls && (err != nil || !ap.Addr().IsLoopback()) {
		return fmt.Errorf("plain HTTP is only for loopback: give --tls-cert and --tls-key to listen on %s", *listen)
	}
	st, cfg, err := c.open(ctx, ln.Addr().String())
	if err != nil {
		return err
	}
	defer st.Close()
	for _, p := range proxies {
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			return fmt.Errorf("--trusted-proxy %q: %w", p, err)
		}
		cfg.TrustedProxies = append(cfg.TrustedProxies, pfx)
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	var mdsOpts mds.Options
	if *mdsFile != "" {
		if *mdsCheck <= 0 {
			return errors.New("--mds-check-interval must be positive")
		}
		opts := mds.Options{AllowExpired: *mdsAllowExpired, Logf: func(format string, args ...any) { log.Warn(fmt.Sprintf(format, args...)) }}
		if *mdsRoot != "" {
			pemBytes, err := os.ReadFile(*mdsRoot)
			if err != nil {
				return err
			}
			if opts.Roots, err = mds.ParseRoots(pemBytes); err != nil {
				return err
			}
		}
		provider, info, err := mds.Load(*mdsFile, opts)
		if err != nil {
			return err
		}
		cfg.MDS, cfg.MDSNextUpdate, mdsOpts = provider, info.NextUpdate, opts
		log.Info("FIDO metadata loaded", "number", info.Number, "nextUpdate", info.NextUpdate, "entries", info.Entries, "expired", info.Expired)
	}
	reg := prometheus.NewRegistry()
	if cfg.Metrics, err = prom.New(reg); err != nil {
		return err
	}
	cfg.Logger = log
	s, err := server.New(cfg)
	if err != nil {
		return err
	}
	tp, shutdownTracing, err := tracing.Setup(ctx, tracing.Config{Endpoint: *otlp, Insecure: *otlpInsecure, SampleRatio: *sampleRatio})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := shutdownTracing(sctx); err != nil {
			log.Warn("flush traces", "err", err)
		}
	}()
	go s.RunJanitor(ctx, time.Minute)
	if *mdsFile != "" {
		go newMDSWatcher(*mdsFile, mdsOpts, s, log, *mdsCheck).run(ctx)
	}
	mux := http.NewServeMux()
	mux.Handle("/", tracing.Middleware(tp, s.Handler()))
	mux.Handle("GET /metrics", cfg.Metrics.Handler())
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	scheme := "http"
	if tls {
		scheme = "https"
	}
	log.Info("serving", "url", scheme+"://"+ln.Addr().String(), "rpId", cfg.RPID, "origins", strings.Join(cfg.Origins, ","))
	fmt.Fprintf(stdout, "keydesk-rp: serving %s://%s\n", scheme, ln.Addr())
	done := make(chan error, 1)
	go func() {
		if tls {
			done <- hs.ServeTLS(ln, *cert, *key)
		} else {
			done <- hs.Serve(ln)
		}
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	// Graceful shutdown: finish requests in flight, up to 10 seconds.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	log.Info("shutting down")
	if err := hs.Shutdown(sctx); err != nil {
		return err
	}
	return nil
}

func bootstrap(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := flag.NewFlagSet("keydesk-rp bootstrap-admin", flag.ContinueOnError)
	f.SetOutput(stderr)
	var c common
	c.register(f)
	user := f.String("user", "", "the first admin's user name")
	listen := f.String("listen", DefaultListen, "where serve listens (for the default origin)")
	if err := f.Parse(args); err != nil {
		return err
	}
	if *user == "" {
		return errors.New("bootstrap-admin: --user NAME is required")
	}
	st, cfg, err := c.open(ctx, *listen)
	if err != nil {
		return err
	}
	defer st.Close()
	cfg.Logger = slog.New(slog.NewJSONHandler(stderr, nil))
	code, expires, err := server.BootstrapAdmin(ctx, cfg, *user)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Enrollment code for %s (one use, until %s):\n\n    %s\n\nSign in with it in Keydesk and enroll a security key.\n",
		strings.ToLower(*user), expires.Local().Format("2006-01-02 15:04"), code)
	return nil
}

func auditCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, Usage)
		return errors.New("audit: want export or verify")
	}
	switch args[0] {
	case "export":
		f := flag.NewFlagSet("keydesk-rp audit export", flag.ContinueOnError)
		f.SetOutput(stderr)
		var c common
		c.register(f)
		out := f.String("out", "-", "file to write, - for standard output")
		if err := f.Parse(args[1:]); err != nil {
			return err
		}
		st, _, err := c.open(ctx, DefaultListen)
		if err != nil {
			return err
		}
		defer st.Close()
		w := stdout
		if *out != "-" {
			file, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
			if err != nil {
				return err
			}
			defer file.Close()
			w = file
		}
		bw := bufio.NewWriter(w)
		var failed error
		entries := storage.AllAudit(ctx, st, &failed)
		if err := audit.WriteJSONL(bw, entries); err != nil {
			return err
		}
		if failed != nil {
			return failed
		}
		return bw.Flush()
	case "verify":
		f := flag.NewFlagSet("keydesk-rp audit verify", flag.ContinueOnError)
		f.SetOutput(stderr)
		head := f.String("head", "", "the expected hash of the last entry (catches a cut-off tail)")
		if err := f.Parse(args[1:]); err != nil {
			return err
		}
		if f.NArg() != 1 {
			return errors.New("audit verify: want one FILE (- for standard input)")
		}
		var r io.Reader = os.Stdin
		if name := f.Arg(0); name != "-" {
			file, err := os.Open(name)
			if err != nil {
				return err
			}
			defer file.Close()
			r = file
		}
		res, err := audit.VerifyOptions{WantHead: *head}.Verify(bufio.NewReader(r))
		if err != nil {
			return fmt.Errorf("audit log does not verify: %w", err)
		}
		fmt.Fprintf(stdout, "OK: %d entries, last %d, head %s\n", res.Entries, res.LastSeq, res.Head)
		return nil
	}
	return fmt.Errorf("audit: unknown subcommand %q", args[0])
}
