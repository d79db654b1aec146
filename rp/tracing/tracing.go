// Package tracing sends the RP server's OpenTelemetry traces to an OTLP/HTTP
// collector when one is configured, and costs nothing when none is.
//
// [Setup] builds the tracer provider, [Middleware] gives every request a
// server span named by its route pattern, and [Start] and [End] wrap the
// child spans of storage calls and ceremonies. Spans carry route patterns,
// methods and status codes only: never a URL, query string, header or body,
// so session tokens, enrollment codes and user names in paths cannot leak
// into a trace.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"runtime/debug"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// scope is the instrumentation scope of every span this package starts.
const scope = "github.com/keydesk/keydesk/rp/tracing"

// DefaultServiceName is the service.name of traces when
// [Config.ServiceName] is empty.
const DefaultServiceName = "keydesk-rp"

// Config says where traces go. The zero value turns tracing off.
type Config struct {
	// Endpoint is the collector's OTLP/HTTP base URL, as in
	// OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318" sends to
	// http://127.0.0.1:4318/v1/traces. Empty turns tracing off.
	Endpoint string
	// ServiceName is the service.name resource attribute;
	// DefaultServiceName when empty.
	ServiceName string
	// ServiceVersion is the service.version resource attribute; the main
	// module's version from the build info when empty (and left out when
	// that is unknown).
	ServiceVersion string
	// Insecure allows an http:// Endpoint on a host other than loopback.
	// Traces hold no secret, but they do map who uses the service when,
	// so plain HTTP off the machine must be asked for.
	Insecure bool
	// SampleRatio is the share of new traces recorded, in (0, 1]; 0 means
	// 1, every trace. A request that arrives inside a trace follows the
	// caller's sampling decision (its traceparent's sampled flag).
	SampleRatio float64
}

// Errors Setup returns for a bad Config.
var (
	ErrBadEndpoint    = errors.New("tracing: endpoint is not an http:// or https:// URL")
	ErrPlainHTTP      = errors.New("tracing: plain http:// endpoint off loopback needs Insecure")
	ErrBadSampleRatio = errors.New("tracing: sample ratio outside [0, 1]")
)

// validate checks c and fills its defaults; it returns the URL that
// traces are posted to.
func (c *Config) validate() (string, error) {
	if math.IsNaN(c.SampleRatio) || c.SampleRatio < 0 || c.SampleRatio > 1 {
		return "", fmt.Errorf("%w: %v", ErrBadSampleRatio, c.SampleRatio)
	}
	if c.SampleRatio == 0 {
		c.SampleRatio = 1
	}
	if c.ServiceName == "" {
		c.ServiceName = DefaultServiceName
	}
	if c.ServiceVersion == "" {
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			c.ServiceVersion = bi.Main.Version
		}
	}
	u, err := url.Parse(c.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		// The endpoint itself is not echoed: it may carry credentials.
		return "", ErrBadEndpoint
	}
	if u.Scheme == "http" && !c.Insecure && !isLoopback(u.Hostname()) {
		return "", fmt.Errorf("%w: %s", ErrPlainHTTP, u.Host)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
	u.RawPath = ""
	return u.String(), nil
}

// isLoopback reports whether host names this machine.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Setup returns the tracer provider for [Middleware] and [Start], and the
// shutdown that flushes the spans still queued and stops the exporter;
// call it once, before the process exits, with a deadline.
//
// With an empty [Config.Endpoint] the provider is a no-op: no exporter,
// no goroutine, and Middleware hands requests straight through. Otherwise
// spans are batched and posted as OTLP protobuf to the endpoint. Setup
// does not connect: a collector that is down loses spans, never requests.
// The exporter's other OTEL_EXPORTER_OTLP_* variables (headers,
// certificates, timeout, compression) apply; OTEL_RESOURCE_ATTRIBUTES adds
// resource attributes. Setup does not touch the otel globals.
func Setup(ctx context.Context, cfg Config) (tp trace.TracerProvider, shutdown func(context.Context) error, err error) {
	if cfg.Endpoint == "" {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	endpoint, err := cfg.validate()
	if err != nil {
		return nil, nil, err
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint))
	if err != nil {
		return nil, nil, fmt.Errorf("tracing: otlp exporter: %w", err)
	}
	attrs := []attribute.KeyValue{semconv.ServiceName(cfg.ServiceName)}
	if cfg.ServiceVersion != "" {
		attrs = append(attrs, semconv.ServiceVersion(cfg.ServiceVersion))
	}
	// Ours come last, so they win over OTEL_RESOURCE_ATTRIBUTES.
	res, err := resource.New(ctx,
		resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(),
		resource.WithAttributes(attrs...),
	)
	if err != nil {
		_ = exp.Shutdown(ctx)
		return nil, nil, fmt.Errorf("tracing: resource: %w", err)
	}
	sdk := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))),
	)
	shutdown = func(ctx context.Context) error {
		if err := sdk.Shutdown(ctx); err != nil {
			return fmt.Errorf("tracing: shutdown: %w", err)
		}
		return nil
	}
	return sdk, shutdown, nil
}
