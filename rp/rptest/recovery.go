package rptest

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/keydesk/keydesk/platform/inprocess"
	"github.com/keydesk/keydesk/platform/softkey"
	"github.com/keydesk/keydesk/rp/api"
)

// NewUVKey returns a key like NewKey's that can verify its user, as a
// phone's passkey does: it has a PIN and an enrolled (simulated)
// fingerprint, and the Key asks for built-in user verification whenever
// the options want it.
func NewUVKey(origin string) (*Key, error) {
	a, err := softkey.New(softkey.Config{Presence: softkey.ApproveAlways})
	if err != nil {
		return nil, err
	}
	p := inprocess.New(a)
	ctx := context.Background()
	if err := p.SetPIN(ctx, "4711-phone"); err != nil {
		return nil, fmt.Errorf("set PIN: %w", err)
	}
	if _, err := p.EnrollFingerprint(ctx, "4711-phone", "thumb"); err != nil {
		return nil, fmt.Errorf("enroll fingerprint: %w", err)
	}
	return &Key{Authenticator: a, Origin: origin, UV: true}, nil
}

// Desktop is the desktop side of a QR handoff recovery: its ephemeral
// key and what starting the handoff answered.
type Desktop struct {
	// Client is the desktop's API client; Redeem sets its Token.
	Client *Client
	// Key is the ephemeral key whose public half the handoff names.
	Key   *ecdsa.PrivateKey
	Start api.RecoveryStart
}

// DesktopPublicKey is k's public key as api.RecoveryStartRequest wants
// it: SubjectPublicKeyInfo, DER, base64url.
func DesktopPublicKey(k *ecdsa.PrivateKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(der), nil
}

// StartRecovery starts a handoff for username as desktopName with a new
// ephemeral key.
func (c *Client) StartRecovery(username, desktopName string) (*Desktop, *Response, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	pub, err := DesktopPublicKey(k)
	if err != nil {
		return nil, nil, err
	}
	d := &Desktop{Client: c, Key: k}
	r, err := c.Do("POST", api.Version+"/recovery/sessions",
		api.RecoveryStartRequest{Username: username, DesktopName: desktopName, DesktopPublicKey: pub}, &d.Start)
	if err != nil {
		return nil, r, err
	}
	return d, r, nil
}

// desktop is a client for the desktop's own routes: its token.
func (d *Desktop) desktop() *Client {
	return &Client{BaseURL: d.Client.BaseURL, HTTP: d.Client.HTTP, Token: d.Start.DesktopToken}
}

// Status asks for the session's status, waiting up to wait seconds for
// one other than since.
func (d *Desktop) Status(since string, wait int) (api.RecoveryStatus, *Response, error) {
	var st api.RecoveryStatus
	r, err := d.desktop().Do("GET", fmt.Sprintf("%s/recovery/sessions/%s/status?since=%s&wait=%d", api.Version, d.Start.SessionID, since, wait), nil, &st)
	return st, r, err
}

// Events opens the session's events stream and sends each status it
// delivers on the channel, which is closed when the stream ends. The
// stream stops when ctx ends.
func (d *Desktop) Events(ctx context.Context) (<-chan api.RecoveryStatus, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", d.Client.BaseURL+api.Version+"/recovery/sessions/"+d.Start.SessionID+"/events", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+d.Start.DesktopToken)
	req.Header.Set("Accept", "text/event-stream")
	hc := d.Client.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		defer resp.Body.Close()
		var p api.Problem
		json.NewDecoder(resp.Body).Decode(&p)
		return nil, fmt.Errorf("events: HTTP %d %s", resp.StatusCode, p.Error)
	}
	out := make(chan api.RecoveryStatus, 8)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		event, data := "", ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if event == "status" && data != "" {
					var st api.RecoveryStatus
					if json.Unmarshal([]byte(data), &st) == nil {
						select {
						case out <- st:
						case <-ctx.Done():
							return
						}
					}
				}
				event, data = "", ""
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data += strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return out, nil
}

// Sign signs the redeem message of nonce (base64url) with key.
func (d *Desktop) Sign(key *ecdsa.PrivateKey, nonce string) (string, error) {
	n, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil {
		return "", err
	}
	digest := sha256.Sum256(api.RecoveryRedeemMessage(d.Start.SessionID, n))
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(sig), nil
}

// Redeem redeems the approval whose nonce the status gave, signing with
// the desktop's key; the session's token goes to d.Client.
func (d *Desktop) Redeem(nonce string) (*api.Session, *Response, error) {
	if nonce == "" {
		return nil, nil, errors.New("redeem: no nonce (not approved)")
	}
	sig, err := d.Sign(d.Key, nonce)
	if err != nil {
		return nil, nil, err
	}
	return d.RedeemSigned(sig)
}

// RedeemSigned sends a redeem with the given signature as it is.
func (d *Desktop) RedeemSigned(signature string) (*api.Session, *Response, error) {
	var sess api.Session
	r, err := d.desktop().Do("POST", api.Version+"/recovery/sessions/"+d.Start.SessionID+"/redeem",
		api.RecoveryRedeemRequest{Signature: signature}, &sess)
	if err != nil {
		return nil, r, err
	}
	d.Client.Token = sess.Token
	return &sess, r, nil
}

// Phone is the phone side of a handoff: the recovery page's calls,
// made with the secret from the QR code's fragment (or a typed code).
type Phone struct {
	Client    *Client
	SessionID string
	Proof     api.RecoveryProof
}

// PhoneFor is the phone that scanned d's QR code.
func (d *Desktop) PhoneFor(c *Client) *Phone {
	return &Phone{Client: c, SessionID: d.Start.SessionID, Proof: api.RecoveryProof{Secret: d.Start.Secret}}
}

func (p *Phone) path(step string) string {
	return api.Version + "/recovery/sessions/" + p.SessionID + "/" + step
}

// Describe asks what the session is.
func (p *Phone) Describe() (api.RecoveryDescription, *Response, error) {
	var d api.RecoveryDescription
	r, err := p.Client.Do("POST", p.path("describe"), p.Proof, &d)
	return d, r, err
}

// Begin picks number and returns the request options.
func (p *Phone) Begin(number int) (api.CeremonyBegin, *Response, error) {
	var b api.CeremonyBegin
	r, err := p.Client.Do("POST", p.path("approve/begin"), api.RecoveryApproveBeginRequest{RecoveryProof: p.Proof, Number: number}, &b)
	return b, r, err
}

// Finish sends the key's assertion for begin.
func (p *Phone) Finish(key *Key, begin api.CeremonyBegin) (*Response, error) {
	cred, err := key.Get(begin.PublicKey)
	if err != nil {
		return nil, err
	}
	return p.Client.Do("POST", p.path("approve/finish"),
		api.RecoveryApproveFinishRequest{RecoveryProof: p.Proof, CeremonyID: begin.CeremonyID, Credential: cred}, nil)
}

// Approve picks number and approves with key, as the page does.
func (p *Phone) Approve(key *Key, number int) (*Response, error) {
	b, r, err := p.Begin(number)
	if err != nil {
		return r, err
	}
	return p.Finish(key, b)
}
