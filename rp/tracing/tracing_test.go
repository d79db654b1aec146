package tracing

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// collector is an OTLP/HTTP trace receiver on loopback that keeps every
// request body it was sent, raw and decoded.
type collector struct {
	srv *httptest.Server

	mu    sync.Mutex
	raw   [][]byte
	spans []*tracepb.Span
	res   []*commonpb.KeyValue
}

func newCollector(t *testing.T) *collector {
	t.Helper()
	c := &collector{}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
			t.Errorf("collector got %s %s, want POST /v1/traces", r.Method, r.URL.Path)
			http.NotFound(w, r)
			return
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				t.Errorf("collector: gzip: %v", err)
				return
			}
			body = zr
		}
		b, err := io.ReadAll(body)
		if err != nil {
			t.Errorf("collector: read: %v", err)
			return
		}
		var req collectortrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			t.Errorf("collector: decode: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		c.raw = append(c.raw, b)
		for _, rs := range req.ResourceSpans {
			c.res = append(c.res, rs.GetResource().GetAttributes()...)
			for _, ss := range rs.ScopeSpans {
				c.spans = append(c.spans, ss.Spans...)
			}
		}
		c.mu.Unlock()
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

// span is the exported span named name; the test fails without one.
func (c *collector) span(t *testing.T, name string) *tracepb.Span {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.spans {
		if s.Name == name {
			return s
		}
	}
	var names []string
	for _, s := range c.spans {
		names = append(names, s.Name)
	}
	t.Fatalf("no span %q among %q", name, names)
	return nil
}

// attrs flattens OTLP attributes to strings for comparison.
func attrs(kvs []*commonpb.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		switch v := kv.Value.GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.Key] = v.StringValue
		case *commonpb.AnyValue_IntValue:
			m[kv.Key] = strconv.FormatInt(v.IntValue, 10)
		default:
			m[kv.Key] = kv.Value.String()
		}
	}
	return m
}

// The secrets a request carries, none of which may reach a trace.
const (
	secretToken = "tok-5c1f0c7e4a9b"
	secretCode  = "code-8d2e61b7f0aa"
	secretBody  = "body-3f9a0d44c2e1"
	secretName  = "alice-7b1e9c"
)

// testMux is a ServeMux with the shapes of the RP's routes.
func testMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/login/finish", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		ctx, span := Start(r.Context(), "storage.Session")
		_ = ctx
		End(span, nil)
		w.WriteHeader(http.StatusOK)
	})
	mux.HandleFunc("GET /v1/users/{name}", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
	})
	mux.HandleFunc("GET /v1/policy", func(w http.ResponseWriter, r *http.Request) {
		_, span := Start(r.Context(), "storage.Policy")
		End(span, errors.New("database unreachable"))
		http.Error(w, "oops", http.StatusInternalServerError)
	})
	mux.HandleFunc("/openapi.yaml", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("openapi: 3.1.0\n"))
	})
	mux.HandleFunc("GET /v1/panic", func(w http.ResponseWriter, r *http.Request) {
		panic(http.ErrAbortHandler)
	})
	return mux
}

func setup(t *testing.T, c *collector, cfg Config) (http.Handler, func()) {
	t.Helper()
	cfg.Endpoint = c.srv.URL
	tp, shutdown, err := Setup(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	h := Middleware(tp, testMux())
	flush := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := shutdown(ctx); err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	}
	return h, flush
}

func do(t *testing.T, h http.Handler, method, target, body string, header map[string]string) int {
	t.Helper()
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code
}

func TestMiddlewareExportsSpansByRoute(t *testing.T) {
	c := newCollector(t)
	h, flush := setup(t, c, Config{ServiceName: "keydesk-rp-test", ServiceVersion: "v9.9.9"})

	const (
		traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
		parent  = "00f067aa0ba902b7"
	)
	auth := map[string]string{"Authorization": "Bearer " + secretToken}
	withParent := map[string]string{
		"Authorization": "Bearer " + secretToken,
		"Traceparent":   "00-" + traceID + "-" + parent + "-01",
	}
	do(t, h, "POST", "/v1/login/finish?code="+secretCode, `{"code":"`+secretBody+`"}`, withParent)
	do(t, h, "GET", "/v1/users/"+secretName+"?q="+secretCode, "", auth)
	do(t, h, "GET", "/v1/policy", "", auth)
	do(t, h, "GET", "/openapi.yaml", "", nil)
	do(t, h, "GET", "/nowhere/"+secretName, "", nil)
	do(t, h, "BREW", "/nowhere", "", nil)
	flush()

	tests := []struct {
		name       string
		span       string
		route      string
		method     string
		status     string
		error      bool
		errorType  string
		wantParent string
	}{
		{name: "ShouldNameSpanByPatternAndJoinIncomingTrace", span: "POST /v1/login/finish", route: "/v1/login/finish", method: "POST", status: "200", wantParent: parent},
		{name: "ShouldUseTemplateNotPathValue", span: "GET /v1/users/{name}", route: "/v1/users/{name}", method: "GET", status: "403"},
		{name: "ShouldMarkServerErrors", span: "GET /v1/policy", route: "/v1/policy", method: "GET", status: "500", error: true, errorType: "500"},
		{name: "ShouldAddMethodToPatternWithoutOne", span: "GET /openapi.yaml", route: "/openapi.yaml", method: "GET", status: "200"},
		{name: "ShouldNameUnmatchedRequestByMethod", span: "GET", method: "GET", status: "404"},
		{name: "ShouldFoldUnknownMethods", span: "HTTP", method: "_OTHER", status: "404"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := c.span(t, tt.span)
			if s.Kind != tracepb.Span_SPAN_KIND_SERVER {
				t.Errorf("kind = %v, want server", s.Kind)
			}
			a := attrs(s.Attributes)
			if a["http.route"] != tt.route {
				t.Errorf("http.route = %q, want %q", a["http.route"], tt.route)
			}
			if a["http.request.method"] != tt.method {
				t.Errorf("http.request.method = %q, want %q", a["http.request.method"], tt.method)
			}
			if a["http.response.status_code"] != tt.status {
				t.Errorf("http.response.status_code = %q, want %q", a["http.response.status_code"], tt.status)
			}
			if a["error.type"] != tt.errorType {
				t.Errorf("error.type = %q, want %q", a["error.type"], tt.errorType)
			}
			if got := s.Status.GetCode() == tracepb.Status_STATUS_CODE_ERROR; got != tt.error {
				t.Errorf("error status = %v, want %v", got, tt.error)
			}
			if tt.wantParent != "" {
				if got := hex.EncodeToString(s.TraceId); got != traceID {
					t.Errorf("trace ID = %s, want the incoming %s", got, traceID)
				}
			}
			if got := hex.EncodeToString(s.ParentSpanId); tt.wantParent != "" && got != tt.wantParent {
				t.Errorf("parent span ID = %s, want %s", got, tt.wantParent)
			} else if tt.wantParent == "" && len(s.ParentSpanId) != 0 {
				t.Errorf("parent span ID = %s, want a root span", got)
			}
		})
	}

	t.Run("ShouldParentChildSpansOnTheServerSpan", func(t *testing.T) {
		server, child := c.span(t, "POST /v1/login/finish"), c.span(t, "storage.Session")
		if !bytes.Equal(child.ParentSpanId, server.SpanId) || !bytes.Equal(child.TraceId, server.TraceId) {
			t.Errorf("storage.Session is not a child of the server span")
		}
		if child.Kind != tracepb.Span_SPAN_KIND_INTERNAL {
			t.Errorf("child kind = %v, want internal", child.Kind)
		}
		failed := c.span(t, "storage.Policy")
		if failed.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR || failed.Status.GetMessage() != "database unreachable" {
			t.Errorf("storage.Policy status = %v, want error %q", failed.Status, "database unreachable")
		}
	})

	t.Run("ShouldDescribeTheService", func(t *testing.T) {
		c.mu.Lock()
		a := attrs(c.res)
		c.mu.Unlock()
		if a["service.name"] != "keydesk-rp-test" || a["service.version"] != "v9.9.9" {
			t.Errorf("resource = %v, want service.name keydesk-rp-test and service.version v9.9.9", a)
		}
	})

	t.Run("ShouldNeverExportSecrets", func(t *testing.T) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(c.raw) == 0 {
			t.Fatal("nothing exported")
		}
		all := bytes.Join(c.raw, nil)
		if !bytes.Contains(all, []byte("/v1/users/{name}")) {
			t.Fatal("the route template is not in the exported bytes: the search below proves nothing")
		}
		for _, b := range c.raw {
			for _, secret := range []string{secretToken, secretCode, secretBody, secretName, "Bearer", "code=", "nowhere"} {
				if bytes.Contains(b, []byte(secret)) {
					t.Errorf("exported bytes contain %q", secret)
				}
			}
		}
	})
}

func TestMiddlewareFollowsCallersSamplingDecision(t *testing.T) {
	c := newCollector(t)
	h, flush := setup(t, c, Config{})
	do(t, h, "GET", "/openapi.yaml", "", map[string]string{
		"Traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
	})
	do(t, h, "GET", "/v1/policy", "", nil)
	flush()
	c.mu.Lock()
	defer c.mu.Unlock()
	var names []string
	for _, s := range c.spans {
		names = append(names, s.Name)
	}
	slices.Sort(names)
	if want := []string{"GET /v1/policy", "storage.Policy"}; !slices.Equal(names, want) {
		t.Errorf("exported %q, want only the policy request and its child: the caller did not sample the other", names)
	}
}

func TestMiddlewareRecordsPanics(t *testing.T) {
	c := newCollector(t)
	h, flush := setup(t, c, Config{})
	func() {
		defer func() {
			if p := recover(); p != http.ErrAbortHandler {
				t.Errorf("recovered %v, want the handler's own panic to go on up", p)
			}
		}()
		do(t, h, "GET", "/v1/panic", "", nil)
	}()
	flush()
	s := c.span(t, "GET /v1/panic")
	if s.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR || attrs(s.Attributes)["error.type"] != "panic" {
		t.Errorf("panicking request: status %v, attributes %v; want an error of type panic", s.Status, attrs(s.Attributes))
	}
}

func TestSetupWithoutEndpointCostsNothing(t *testing.T) {
	before := runtime.NumGoroutine()
	tp, shutdown, err := Setup(context.Background(), Config{ServiceName: "x", SampleRatio: 0.5})
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	mux := testMux()
	if h := Middleware(tp, mux); h != http.Handler(mux) {
		t.Errorf("Middleware wrapped the handler with tracing off")
	}
	if h := Middleware(nil, mux); h != http.Handler(mux) {
		t.Errorf("Middleware wrapped the handler with a nil provider")
	}
	ctx, span := Start(context.Background(), "storage.Session")
	if span.IsRecording() || span.SpanContext().IsValid() {
		t.Errorf("Start outside a traced request recorded a span")
	}
	End(span, errors.New("x"))
	_ = ctx
	if err := shutdown(context.Background()); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Errorf("goroutines: %d before Setup, %d after: tracing off started some", before, after)
	}
}

func TestSetupRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want error
	}{
		{name: "ShouldRefuseSchemelessEndpoint", cfg: Config{Endpoint: "collector:4318"}, want: ErrBadEndpoint},
		{name: "ShouldRefuseGRPCScheme", cfg: Config{Endpoint: "grpc://127.0.0.1:4317"}, want: ErrBadEndpoint},
		{name: "ShouldRefuseCredentialsInURL", cfg: Config{Endpoint: "https://user:pw@collector.example"}, want: ErrBadEndpoint},
		{name: "ShouldRefuseQuery", cfg: Config{Endpoint: "https://collector.example/?token=x"}, want: ErrBadEndpoint},
		{name: "ShouldRefusePlainHTTPOffLoopback", cfg: Config{Endpoint: "http://collector.example:4318"}, want: ErrPlainHTTP},
		{name: "ShouldRefuseNegativeRatio", cfg: Config{Endpoint: "http://127.0.0.1:4318", SampleRatio: -0.1}, want: ErrBadSampleRatio},
		{name: "ShouldRefuseRatioAboveOne", cfg: Config{Endpoint: "http://127.0.0.1:4318", SampleRatio: 1.5}, want: ErrBadSampleRatio},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Setup(context.Background(), tt.cfg)
			if !errors.Is(err, tt.want) {
				t.Errorf("Setup = %v, want %v", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "pw") {
				t.Errorf("error %q echoes the endpoint's credentials", err)
			}
		})
	}
}

func TestConfigValidateFillsDefaultsAndURL(t *testing.T) {
	tests := []struct {
		name     string
		cfg      Config
		wantURL  string
		wantRate float64
	}{
		{name: "ShouldAppendTracesPath", cfg: Config{Endpoint: "http://127.0.0.1:4318"}, wantURL: "http://127.0.0.1:4318/v1/traces", wantRate: 1},
		{name: "ShouldKeepBasePath", cfg: Config{Endpoint: "https://collector.example/otlp/", SampleRatio: 0.25}, wantURL: "https://collector.example/otlp/v1/traces", wantRate: 0.25},
		{name: "ShouldAllowLocalhost", cfg: Config{Endpoint: "http://localhost:4318"}, wantURL: "http://localhost:4318/v1/traces", wantRate: 1},
		{name: "ShouldAllowIPv6Loopback", cfg: Config{Endpoint: "http://[::1]:4318"}, wantURL: "http://[::1]:4318/v1/traces", wantRate: 1},
		{name: "ShouldAllowPlainHTTPWhenInsecure", cfg: Config{Endpoint: "http://collector.example:4318", Insecure: true}, wantURL: "http://collector.example:4318/v1/traces", wantRate: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			got, err := cfg.validate()
			if err != nil {
				t.Fatalf("validate: %v", err)
			}
			if got != tt.wantURL || cfg.SampleRatio != tt.wantRate || cfg.ServiceName != DefaultServiceName {
				t.Errorf("validate = %q, ratio %v, service %q; want %q, %v, %q",
					got, cfg.SampleRatio, cfg.ServiceName, tt.wantURL, tt.wantRate, DefaultServiceName)
			}
		})
	}
}

func TestRoute(t *testing.T) {
	tests := []struct{ name, pattern, want string }{
		{"ShouldDropMethod", "POST /v1/login/finish", "/v1/login/finish"},
		{"ShouldKeepWildcards", "GET /v1/users/{name}/keys/{id}", "/v1/users/{name}/keys/{id}"},
		{"ShouldKeepPatternWithoutMethod", "/openapi.yaml", "/openapi.yaml"},
		{"ShouldDropHost", "GET example.com/v1/me", "/v1/me"},
		{"ShouldDropHostWithoutMethod", "example.com/", "/"},
		{"ShouldBeEmptyWhenUnrouted", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := route(tt.pattern); got != tt.want {
				t.Errorf("route(%q) = %q, want %q", tt.pattern, got, tt.want)
			}
		})
	}
}
