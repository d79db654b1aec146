package phonetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
)

// isolatedWorld names the JavaScript world, separate from the page's own, where the phone's
// CSP listener runs: the page can neither see its binding nor remove its listener, yet the
// world shares the page's DOM and so receives its securitypolicyviolation events.
const isolatedWorld = "keydesk-phonetest"

// cspBinding is the function CDP exposes in isolatedWorld; each call becomes a
// Runtime.bindingCalled event carrying a violation as JSON.
const cspBinding = "__keydeskPhonetestCSP"

// cspListener runs in isolatedWorld before any script of each new document. It forwards the
// same fields a CSP report (report-to) carries, so a test sees what a report endpoint would.
const cspListener = `document.addEventListener("securitypolicyviolation", (e) => {
	globalThis.` + cspBinding + `(JSON.stringify({
		directive: e.effectiveDirective || e.violatedDirective,
		blockedURI: e.blockedURI,
		documentURI: e.documentURI,
		policy: e.originalPolicy,
		disposition: e.disposition,
		sample: e.sample,
		sourceFile: e.sourceFile,
		line: e.lineNumber,
	}));
}, true);`

// Phone is a tab of a [Browser] standing in for the user's phone: its own browser context
// (cookies, storage and cache shared with no other phone), a virtual platform authenticator
// that holds its passkeys, and a record of everything the page logged, threw, violated and
// requested since the phone was made.
//
// Its methods fail the test through the testing.TB given to [Browser.NewPhone], so call them
// from the test's goroutine. A Phone is not for concurrent use; parallel tests each make their
// own.
type Phone struct {
	tb     testing.TB
	ctx    context.Context          // the tab's chromedp context
	authID webauthn.AuthenticatorID // "" after RemoveAuthenticator

	mu       sync.Mutex
	console  []ConsoleMessage
	requests []Request
	csp      []CSPViolation
}

// ConsoleMessage is something the page logged or threw: a call of the console API, an
// uncaught exception or unhandled promise rejection, or an entry of the browser's own log
// (a CSP violation, a failed resource load, a deprecation).
type ConsoleMessage struct {
	// Type is the console API's name for a call ("log", "info", "warning", "error",
	// "debug", ...), "exception" for an uncaught exception or an unhandled rejection, and
	// the level ("verbose", "info", "warning", "error") for a browser log entry.
	Type string
	// Source is "" for the console API and exceptions; for a browser log entry it says
	// which part of the browser wrote it: "security", "network", "javascript", ...
	Source string
	// Text is what the DevTools console shows.
	Text string
	// URL and Line (1-based, 0 if unknown) locate the message's origin, when known.
	URL  string
	Line int64
}

// String formats the message as a DevTools console line.
func (m ConsoleMessage) String() string {
	var b strings.Builder
	b.WriteString(m.Type)
	if m.Source != "" {
		b.WriteString("[" + m.Source + "]")
	}
	b.WriteString(": " + m.Text)
	if m.URL != "" {
		fmt.Fprintf(&b, " (%s:%d)", m.URL, m.Line)
	}
	return b.String()
}

// IsError reports whether the message is an exception or logged at the error level: what a
// page working as intended never produces.
func (m ConsoleMessage) IsError() bool {
	return m.Type == "exception" || m.Type == "error" || m.Type == "assert"
}

// Request is an HTTP request the page made (a navigation, a script, a fetch, a beacon, a
// redirect's next hop), as the browser put it on the wire.
type Request struct {
	// Method and URL make the request line. The URL never holds a fragment: the browser
	// keeps the fragment for itself (see Fragment).
	Method string
	URL    string
	// Fragment is the fragment ("#...") of the URL the page asked for, which the browser did
	// not send; "" if there was none.
	Fragment string
	// Headers are the request headers the browser reported (it adds cookies and a few
	// others at a lower layer).
	Headers map[string]string
	// Body is the request body, as far as the browser reported it (large bodies may be
	// missing).
	Body []byte
	// Type is the resource type: "Document", "Script", "Fetch", "XHR", "Ping", ...
	Type string
}

// Line returns the request line, "METHOD URL".
func (r Request) Line() string { return r.Method + " " + r.URL }

// Contains reports whether s occurs in what the request sent: its URL, a header's name or
// value, or its body. The Fragment, which the browser did not send, is not searched.
func (r Request) Contains(s string) bool {
	if strings.Contains(r.URL, s) || bytes.Contains(r.Body, []byte(s)) {
		return true
	}
	for k, v := range r.Headers {
		if strings.Contains(k, s) || strings.Contains(v, s) {
			return true
		}
	}
	return false
}

// CSPViolation is a Content-Security-Policy violation reported by the page's
// securitypolicyviolation event: the fields a CSP report carries.
type CSPViolation struct {
	// Directive is the directive that was violated, such as "script-src-elem".
	Directive string `json:"directive"`
	// BlockedURI is what was blocked: a URL, or "inline" or "eval".
	BlockedURI string `json:"blockedURI"`
	// DocumentURI is the URL of the page that had the policy.
	DocumentURI string `json:"documentURI"`
	// Policy is the policy as the server sent it.
	Policy string `json:"policy"`
	// Disposition is "enforce", or "report" for a Content-Security-Policy-Report-Only policy.
	Disposition string `json:"disposition"`
	// Sample is the start of the blocked inline code, when the policy asks for samples
	// ('report-sample').
	Sample string `json:"sample"`
	// SourceFile and Line locate the violation, when known.
	SourceFile string `json:"sourceFile"`
	Line       int64  `json:"line"`
}

// Credential is a passkey the phone's authenticator holds.
type Credential struct {
	ID         []byte
	RPID       string
	UserHandle []byte
	UserName   string
	// SignCount is the signature counter after the last assertion.
	SignCount uint32
	// Resident is true for a discoverable credential (a passkey).
	Resident bool
}

// NewPhone opens a phone: a new tab in a new browser context, with the WebAuthn domain
// enabled and a virtual authenticator added that behaves like a phone's built-in one (CTAP2,
// transport "internal", discoverable credentials, user verification that succeeds, the user's
// presence simulated on every request). The tab and its browser context are closed when the
// test ends.
func (b *Browser) NewPhone(tb testing.TB) *Phone {
	tb.Helper()
	p := &Phone{tb: tb}
	// The listener is attached before the tab's first command, so nothing the page does
	// escapes the record.
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext(), chromedp.WithListener(p.onEvent))
	p.ctx = ctx

	// The first Do creates the tab and binds it to ctx, which must outlive this call, so the
	// bound on it is a timer rather than a context deadline.
	timer := time.AfterFunc(ActionTimeout, cancel)
	err := chromedp.Do(ctx)
	if fired := !timer.Stop(); fired || err != nil {
		cancel()
		if fired {
			err = fmt.Errorf("no answer within %v", ActionTimeout)
		}
		tb.Fatalf("phonetest: open a tab: %v%s", err, b.outputTail())
	}
	tb.Cleanup(func() {
		// Closes the tab and disposes of its browser context, and says if that failed.
		err := chromedp.Cancel(ctx)
		cancel()
		if err != nil && !errors.Is(err, context.Canceled) {
			tb.Errorf("phonetest: close the phone's tab: %v", err)
		}
	})

	err = p.do(func(ctx context.Context) error {
		// No UI: this is automation, and a dialog would wait for a click nobody makes.
		if _, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{EnableUI: new(false)}); err != nil {
			return fmt.Errorf("enable WebAuthn: %w", err)
		}
		res, err := chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
			Options: &webauthn.VirtualAuthenticatorOptions{
				Protocol: webauthn.AuthenticatorProtocolCtap2,
				// CTAP 2.1, as current phones' platform authenticators speak.
				Ctap2version:                webauthn.Ctap2versionCtap21,
				Transport:                   webauthn.AuthenticatorTransportInternal,
				HasResidentKey:              true,
				HasUserVerification:         true,
				IsUserVerified:              true,
				AutomaticPresenceSimulation: true,
			},
		})
		if err != nil {
			return fmt.Errorf("add virtual authenticator: %w", err)
		}
		p.authID = res.AuthenticatorID
		if _, err := chromedp.Call(ctx, runtime.AddBinding, runtime.AddBindingParams{
			Name: cspBinding, ExecutionContextName: isolatedWorld,
		}); err != nil {
			return fmt.Errorf("add CSP binding: %w", err)
		}
		if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
			Source: cspListener, WorldName: isolatedWorld,
		}); err != nil {
			return fmt.Errorf("add CSP listener: %w", err)
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("phonetest: set up the phone: %v", err)
	}
	return p
}

// Context returns the tab's chromedp context, for what the Phone's methods do not cover:
// chromedp.Run(p.Context(), ...) runs any action in the tab. It is canceled when the test ends.
func (p *Phone) Context() context.Context { return p.ctx }

// do runs f with a context for the tab bounded by ActionTimeout.
func (p *Phone) do(f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(p.ctx, ActionTimeout)
	defer cancel()
	return f(ctx)
}

// run runs actions in the tab, bounded by ActionTimeout.
func (p *Phone) run(actions ...chromedp.Action[chromedp.Void]) error {
	return p.do(func(ctx context.Context) error { return chromedp.Do(ctx, actions...) })
}

// Navigate loads url in the tab and waits for its load event; an HTTP error status is not a
// failure (check the page), a network error is. A URL that only changes the fragment does not
// load a page: set location.hash with Eval instead.
func (p *Phone) Navigate(url string) {
	p.tb.Helper()
	if err := p.run(chromedp.Navigate(url)); err != nil {
		p.tb.Fatalf("phonetest: navigate to %s: %v", url, err)
	}
}

// Eval evaluates the JavaScript expression js in the page, as if the user had just touched it
// (so APIs that need a user activation work), awaits it if it is a promise, and decodes its
// JSON value into out (nil to discard it). An exception or a rejected promise fails the test;
// use TryEval to look at it.
func (p *Phone) Eval(js string, out any) {
	p.tb.Helper()
	if err := p.TryEval(js, out); err != nil {
		p.tb.Fatalf("phonetest: eval %q: %v", js, err)
	}
}

// TryEval is Eval returning its error instead of failing the test; a JavaScript exception or
// rejection is a *chromedp.ExceptionError.
func (p *Phone) TryEval(js string, out any) error {
	gesture := func(params *runtime.EvaluateParams) { params.UserGesture = new(true) }
	var raw []byte
	err := p.do(func(ctx context.Context) error {
		var err error
		raw, err = chromedp.Run(ctx, chromedp.Evaluate[[]byte](js, chromedp.EvalAwaitPromise, gesture))
		return err
	})
	if err != nil || out == nil {
		return err
	}
	if len(raw) == 0 { // undefined
		raw = []byte("null")
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("decode %s: %w", raw, err)
	}
	return nil
}

// WaitVisible waits until an element matching the CSS selector is visible.
func (p *Phone) WaitVisible(selector string) {
	p.tb.Helper()
	if err := p.run(chromedp.WaitVisible(chromedp.CSS(selector))); err != nil {
		p.tb.Fatalf("phonetest: wait for %s to be visible: %v", selector, err)
	}
}

// Text waits until an element matching the CSS selector is visible and returns its rendered
// text (innerText).
func (p *Phone) Text(selector string) string {
	p.tb.Helper()
	var text string
	err := p.do(func(ctx context.Context) error {
		var err error
		text, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(selector), chromedp.NodeVisible))
		return err
	})
	if err != nil {
		p.tb.Fatalf("phonetest: text of %s: %v", selector, err)
	}
	return text
}

// Click waits until an element matching the CSS selector is visible and clicks it with the
// mouse, as the user's tap would.
func (p *Phone) Click(selector string) {
	p.tb.Helper()
	if err := p.run(chromedp.Click(chromedp.CSS(selector))); err != nil {
		p.tb.Fatalf("phonetest: click %s: %v", selector, err)
	}
}

// authenticator returns the authenticator's id, failing the test after RemoveAuthenticator.
func (p *Phone) authenticator(what string) webauthn.AuthenticatorID {
	p.tb.Helper()
	if p.authID == "" {
		p.tb.Fatalf("phonetest: %s: the phone's authenticator was removed", what)
	}
	return p.authID
}

// Credentials returns the passkeys the phone's authenticator holds.
func (p *Phone) Credentials() []Credential {
	p.tb.Helper()
	id := p.authenticator("credentials")
	var res webauthn.GetCredentialsResult
	err := p.do(func(ctx context.Context) error {
		var err error
		res, err = chromedp.Call(ctx, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: id})
		return err
	})
	if err != nil {
		p.tb.Fatalf("phonetest: get credentials: %v", err)
	}
	creds := make([]Credential, 0, len(res.Credentials))
	for _, c := range res.Credentials {
		count := uint32(0)
		if c.SignCount > 0 {
			count = uint32(c.SignCount)
		}
		creds = append(creds, Credential{
			ID: c.CredentialID, RPID: c.RpID, UserHandle: c.UserHandle, UserName: c.UserName,
			SignCount: count, Resident: c.IsResidentCredential,
		})
	}
	return creds
}

// SetUserVerified sets whether the authenticator's user verification (the phone's biometric
// or screen lock) succeeds. With false, a ceremony that requires user verification fails in
// the page with a NotAllowedError, as when the user's fingerprint is not recognised.
func (p *Phone) SetUserVerified(verified bool) {
	p.tb.Helper()
	id := p.authenticator("set user verified")
	err := p.do(func(ctx context.Context) error {
		_, err := chromedp.Call(ctx, webauthn.SetUserVerified, webauthn.SetUserVerifiedParams{
			AuthenticatorID: id, IsUserVerified: verified,
		})
		return err
	})
	if err != nil {
		p.tb.Fatalf("phonetest: set user verified: %v", err)
	}
}

// RemoveAuthenticator removes the phone's authenticator and its passkeys, as on a phone
// without a screen lock: a WebAuthn ceremony then finds no authenticator and fails with a
// NotAllowedError when its timeout expires (pass a short timeout). Credentials,
// SetUserVerified and RemoveAuthenticator then fail the test.
func (p *Phone) RemoveAuthenticator() {
	p.tb.Helper()
	id := p.authenticator("remove authenticator")
	err := p.do(func(ctx context.Context) error {
		_, err := chromedp.Call(ctx, webauthn.RemoveVirtualAuthenticator, webauthn.RemoveVirtualAuthenticatorParams{AuthenticatorID: id})
		return err
	})
	if err != nil {
		p.tb.Fatalf("phonetest: remove authenticator: %v", err)
	}
	p.authID = ""
}

// settle lets the page run the tasks it has queued (a securitypolicyviolation event is
// dispatched in a task after the violation) and waits for the browser's answer, which comes
// after every event those tasks caused: so the records are complete up to now. A page that is
// gone or busy past a short bound is not waited for.
func (p *Phone) settle() {
	ctx, cancel := context.WithTimeout(p.ctx, 2*time.Second)
	defer cancel()
	_, _ = chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](
		`new Promise((r) => setTimeout(() => setTimeout(r, 0), 0))`, chromedp.EvalAwaitPromise))
}

// Console returns what the page logged and threw since the phone was made, in order.
func (p *Phone) Console() []ConsoleMessage {
	p.settle()
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.console)
}

// PageErrors returns the page's uncaught exceptions and unhandled promise rejections, in
// order.
func (p *Phone) PageErrors() []ConsoleMessage {
	var errs []ConsoleMessage
	for _, m := range p.Console() {
		if m.Type == "exception" {
			errs = append(errs, m)
		}
	}
	return errs
}

// CSPViolations returns the Content-Security-Policy violations of every page the phone
// loaded, in order.
func (p *Phone) CSPViolations() []CSPViolation {
	p.settle()
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.csp)
}

// Requests returns the HTTP requests the phone's pages made, in order.
func (p *Phone) Requests() []Request {
	p.settle()
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.requests)
}

// RequestsContaining returns the requests that sent s (see [Request.Contains]): to check that
// a secret the page holds, such as a key in the URL fragment, never left the phone.
func (p *Phone) RequestsContaining(s string) []Request {
	var found []Request
	for _, r := range p.Requests() {
		if r.Contains(s) {
			found = append(found, r)
		}
	}
	return found
}

// CheckNoErrors fails the test (without stopping it) for each exception, error-level console
// message and CSP violation the phone has seen: a phone page working as intended produces
// none.
func (p *Phone) CheckNoErrors() {
	p.tb.Helper()
	for _, m := range p.Console() {
		if m.IsError() {
			p.tb.Errorf("phonetest: page error: %s", m)
		}
	}
	for _, v := range p.CSPViolations() {
		p.tb.Errorf("phonetest: CSP violation: %s blocked %q on %s", v.Directive, v.BlockedURI, v.DocumentURI)
	}
}

// onEvent records the events the tests look at. It runs in the tab's message loop, so it only
// appends under the lock.
func (p *Phone) onEvent(ev any) {
	var (
		msg *ConsoleMessage
		req *Request
		csp *CSPViolation
	)
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		msg = &ConsoleMessage{Type: string(ev.Type), Text: consoleText(ev.Args)}
		if st := ev.StackTrace; st != nil && len(st.CallFrames) > 0 {
			msg.URL, msg.Line = st.CallFrames[0].URL, st.CallFrames[0].LineNumber+1
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		text := d.Text
		if obj := d.Exception; obj != nil {
			desc, _, _ := strings.Cut(remoteText(obj), "\n    at ")
			text += " " + desc
		}
		msg = &ConsoleMessage{Type: "exception", Text: strings.TrimSpace(text), URL: d.URL, Line: d.LineNumber + 1}
	case *log.EventEntryAdded:
		e := ev.Entry
		msg = &ConsoleMessage{Type: string(e.Level), Source: string(e.Source), Text: e.Text, URL: e.URL}
		if e.LineNumber > 0 {
			msg.Line = e.LineNumber + 1
		}
	case *network.EventRequestWillBeSent:
		r := ev.Request
		req = &Request{Method: r.Method, URL: r.URL, Fragment: r.URLFragment, Type: string(ev.Type), Headers: map[string]string{}}
		for k, v := range r.Headers {
			req.Headers[k] = fmt.Sprint(v)
		}
		for _, e := range r.PostDataEntries {
			req.Body = append(req.Body, e.Bytes...)
		}
	case *runtime.EventBindingCalled:
		if ev.Name != cspBinding {
			return
		}
		csp = new(CSPViolation)
		if err := json.Unmarshal([]byte(ev.Payload), csp); err != nil {
			csp = &CSPViolation{Directive: "(undecodable report: " + err.Error() + ")"}
		}
	default:
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case msg != nil:
		p.console = append(p.console, *msg)
	case req != nil:
		p.requests = append(p.requests, *req)
	case csp != nil:
		p.csp = append(p.csp, *csp)
	}
}

// consoleText joins a console call's arguments as the DevTools console shows them (without
// applying %s-style formats).
func consoleText(args []*runtime.RemoteObject) string {
	parts := make([]string, 0, len(args))
	for _, a := range args {
		parts = append(parts, remoteText(a))
	}
	return strings.Join(parts, " ")
}

// remoteText renders a remote object: a string as it is, a primitive by its JSON value, an
// object by its description.
func remoteText(o *runtime.RemoteObject) string {
	if o == nil {
		return ""
	}
	if len(o.Value) > 0 {
		var s string
		if json.Unmarshal(o.Value, &s) == nil {
			return s
		}
		return string(o.Value)
	}
	if o.UnserializableValue != "" {
		return string(o.UnserializableValue)
	}
	if o.Description != "" {
		return o.Description
	}
	return string(o.Type)
}
