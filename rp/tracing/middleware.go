package tracing

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/keydesk/keydesk/rp/httpstatus"
)

// propagator reads W3C traceparent and tracestate. Baggage is not read:
// nothing here would use it, and it is the caller's to fill.
var propagator = propagation.TraceContext{}

// Middleware gives every request through next a server span, child of the
// request's W3C traceparent when it has one. The span is named by the
// route pattern of the [http.ServeMux] that routed the request, "POST
// /v1/login/finish" (the method and "/v1/users/{name}" for a pattern
// without one), never by its path; a request no route matched is named by
// its method alone. It records http.request.method, http.route and
// http.response.status_code, and marks a 5xx answer or a panic as an
// error. It never records the URL, a query string, a header or a body.
//
// As with the metrics middleware, next must be, or pass the request
// unchanged to, the ServeMux: the mux records the pattern on the request
// it is given. A nil tp, or the no-op one from [Setup], returns next
// itself.
func Middleware(tp trace.TracerProvider, next http.Handler) http.Handler {
	if tp == nil {
		return next
	}
	if _, off := tp.(noop.TracerProvider); off {
		return next
	}
	tracer := tp.Tracer(scope)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		method := methodAttr(r.Method)
		ctx, span := tracer.Start(ctx, spanMethod(method),
			trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(method))
		r = r.WithContext(ctx)
		sw := httpstatus.Wrap(w)
		done := false
		defer func() {
			name(span, r)
			if !done {
				// A panic is on its way up to net/http: record it without
				// recovering, so its stack is the handler's.
				span.SetStatus(codes.Error, "handler panicked")
				span.SetAttributes(semconv.ErrorTypeKey.String("panic"))
			}
			span.End()
		}()
		next.ServeHTTP(sw, r)
		done = true
		status := sw.Status()
		if status == 0 {
			status = http.StatusOK
		}
		span.SetAttributes(semconv.HTTPResponseStatusCode(status))
		if status >= 500 {
			span.SetStatus(codes.Error, "")
			span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(status)))
		}
	})
}

// name names span after the pattern the mux recorded on r, and records it
// as http.route.
func name(span trace.Span, r *http.Request) {
	route := route(r.Pattern)
	if route == "" {
		return
	}
	span.SetAttributes(semconv.HTTPRoute(route))
	span.SetName(spanMethod(methodAttr(r.Method)) + " " + route)
}

// route is the path template of a ServeMux pattern, "[METHOD ][HOST]/PATH":
// "/v1/users/{name}" for "GET /v1/users/{name}".
func route(pattern string) string {
	if pattern == "" {
		return ""
	}
	if i := strings.IndexAny(pattern, " \t"); i >= 0 {
		pattern = strings.TrimLeft(pattern[i:], " \t")
	}
	if i := strings.IndexByte(pattern, '/'); i > 0 {
		pattern = pattern[i:] // drop the host
	}
	return pattern
}

// methodAttr is http.request.method: the method when it is a standard one,
// "_OTHER" otherwise, so a client cannot invent names for spans.
func methodAttr(m string) attribute.KeyValue {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return semconv.HTTPRequestMethodKey.String(m)
	}
	return semconv.HTTPRequestMethodOther
}

// spanMethod is the method part of a span name: "HTTP" for "_OTHER".
func spanMethod(m attribute.KeyValue) string {
	if m == semconv.HTTPRequestMethodOther {
		return "HTTP"
	}
	return m.Value.AsString()
}

// Start begins a span called name, a child of the span in ctx and on that
// span's provider, for work inside a request: a storage call
// ("storage.Session"), a ceremony step ("webauthn.FinishLogin"). Outside a
// traced request it returns a no-op span at almost no cost. attrs must
// hold nothing secret and nothing that names a person. Finish it with
// [End].
func Start(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	tp := trace.SpanFromContext(ctx).TracerProvider()
	return tp.Tracer(scope).Start(ctx, name, trace.WithAttributes(attrs...))
}

// End ends span, marked as an error when err is not nil. The error's
// message becomes the status description, so, as in logs, it must hold
// nothing secret; the package's callers wrap only secret-free context.
func End(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
