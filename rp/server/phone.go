package server

import (
	"embed"
	"net/http"
)

// phoneFiles is the recovery page the QR code leads to: plain HTML, one
// script and one style sheet, all served from here, nothing from any
// other origin.
//
//go:embed phone/index.html phone/app.js phone/style.css
var phoneFiles embed.FS

// PhoneCSP is the recovery page's Content-Security-Policy (CSP Level 3):
// its own script, style and API only, no inline code, no frames around
// it, no base or form targets. A page that holds a secret in its URL and
// asks for a passkey must run nothing it did not ship.
const PhoneCSP = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// servePhone answers one of the page's files with the headers that keep
// it to itself: the policy, no referrer (the URL held a secret), never
// cached (handle sets Cache-Control: no-store), never framed.
func servePhone(w http.ResponseWriter, name, contentType string) error {
	b, err := phoneFiles.ReadFile("phone/" + name)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Security-Policy", PhoneCSP)
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "publickey-credentials-get=(self), camera=(), microphone=(), geolocation=()")
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(b)
	return err
}

// phonePage is GET /r/{id}: the same page for every session, which reads
// the session from its path and the secret from its fragment.
func (s *Server) phonePage(w http.ResponseWriter, r *http.Request, _ *caller) error {
	return servePhone(w, "index.html", "text/html; charset=utf-8")
}

func (s *Server) phoneScript(w http.ResponseWriter, r *http.Request, _ *caller) error {
	return servePhone(w, "app.js", "text/javascript; charset=utf-8")
}

func (s *Server) phoneStyle(w http.ResponseWriter, r *http.Request, _ *caller) error {
	return servePhone(w, "style.css", "text/css; charset=utf-8")
}

// favicon answers the icon every browser asks for after loading a page,
// the phone page included: without it, each phone logs a failed load (a
// 404) in its console. There is no icon: 204, nothing to cache.
func (s *Server) favicon(w http.ResponseWriter, r *http.Request, _ *caller) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
}
