package rpcli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keydesk/keydesk/rp/rptest"
)

const origin = "https://rp.test"

// serveInProcess runs serve on a random loopback port until the test
// ends, and returns its base URL.
func serveInProcess(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...), pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("serve printed no address: %v", <-done)
	}
	go io.Copy(io.Discard, pr)
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("serve did not shut down")
		}
	})
	return strings.TrimSpace(strings.TrimPrefix(line, "keydesk-rp: serving "))
}

func TestServeBootstrapAndAudit(t *testing.T) {
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "rp.db")
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"bootstrap-admin", "--db", db, "--user", "Root", "--origin", origin}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	code := regexp.MustCompile(`[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}`).FindString(out.String())
	if code == "" {
		t.Fatalf("no code in:\n%s", out.String())
	}
	if info, err := os.Stat(filepath.Join(dir, "rp.secret")); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("secret file: %v %v", info, err)
	}
	base := serveInProcess(t, "--db", db, "--origin", origin)

	c := &rptest.Client{BaseURL: base}
	key, err := rptest.NewKey(origin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Redeem("root", code); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Register(key, "first"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Login(key, ""); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/healthz":      `"ok"`,
		"/readyz":       `"ready"`,
		"/openapi.yaml": "openapi: 3.1",
		"/metrics":      `keydesk_rp_authentications_total{reason="none",result="success"} 1`,
	} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("GET %s: %d, want %q in:\n%.2000s", path, resp.StatusCode, want, b)
		}
	}
	if err := Run(context.Background(), []string{"bootstrap-admin", "--db", db, "--user", "root"}, io.Discard, io.Discard); err == nil {
		t.Error("a second bootstrap of an admin with a key succeeded")
	}

	export := filepath.Join(dir, "audit.jsonl")
	if err := Run(context.Background(), []string{"audit", "export", "--db", db, "--out", export}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := Run(context.Background(), []string{"audit", "verify", export}, &out, io.Discard); err != nil || !strings.HasPrefix(out.String(), "OK: ") {
		t.Fatalf("verify: %v %s", err, out.String())
	}
	b, _ := os.ReadFile(export)
	if bytes.Contains(b, []byte(code)) {
		t.Fatal("the enrollment code is in the audit log")
	}
	edited := filepath.Join(dir, "edited.jsonl")
	os.WriteFile(edited, bytes.Replace(b, []byte(`"actor":"root"`), []byte(`"actor":"mallory"`), 1), 0o600)
	if err := Run(context.Background(), []string{"audit", "verify", edited}, io.Discard, io.Discard); err == nil {
		t.Fatal("an edited audit log verified")
	}
}

func TestServeRefusesPlainHTTPOffLoopback(t *testing.T) {
	err := Run(context.Background(), []string{"serve", "--listen", "0.0.0.0:0", "--db", "sqlite:" + filepath.Join(t.TempDir(), "rp.db")}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "only for loopback") {
		t.Fatalf("got %v", err)
	}
}

func TestServeNeedsASecretWithPostgres(t *testing.T) {
	err := Run(context.Background(), []string{"bootstrap-admin", "--user", "x", "--db", "postgres://nobody@127.0.0.1:1/x"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--secret-file") {
		t.Fatalf("got %v", err)
	}
}

// TestServeSendsTraces points serve at a stand-in OTLP collector: the
// spans of a request reach it by the time serve has shut down.
func TestServeSendsTraces(t *testing.T) {
	var posts atomic.Int32
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" && r.URL.Path == "/v1/traces" {
			posts.Add(1)
		}
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
	}))
	defer collector.Close()
	db := "sqlite:" + filepath.Join(t.TempDir(), "rp.db")
	t.Run("serve", func(t *testing.T) {
		base := serveInProcess(t, "--db", db, "--origin", origin, "--otlp-endpoint", collector.URL)
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}) // serve shuts down and flushes at the end of the subtest
	if posts.Load() == 0 {
		t.Fatal("no spans reached the collector")
	}
}

// TestServeTLS serves HTTPS off loopback with a certificate made here.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rp.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"rp.test"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)

	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"serve", "--listen", "0.0.0.0:0", "--db", "sqlite:" + filepath.Join(dir, "rp.db"),
			"--origin", origin, "--tls-cert", certFile, "--tls-key", keyFile}, pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("serve printed no address: %v", <-done)
	}
	go io.Copy(io.Discard, pr)
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	addr := strings.TrimSpace(strings.TrimPrefix(line, "keydesk-rp: serving https://"))
	_, port, _ := net.SplitHostPort(addr)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get("https://127.0.0.1:" + port + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("status %d, TLS %v", resp.StatusCode, resp.TLS != nil)
	}
}
