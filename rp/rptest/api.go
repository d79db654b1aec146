package rptest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/keydesk/keydesk/rp/api"
	"github.com/keydesk/keydesk/rp/audit"
)

// Client calls the RP API as one signed-in (or not yet) user.
type Client struct {
	BaseURL string
	HTTP    *http.Client
	// Token is the session's bearer token, "" before signing in.
	Token string
}

// Response is an answer: its status, raw body, and the problem it
// carries when it is an error.
type Response struct {
	Status  int
	Body    []byte
	Problem api.Problem
}

// Err returns nil for a 2xx answer, else an error naming the problem.
func (r *Response) Err() error {
	if r.Status >= 200 && r.Status < 300 {
		return nil
	}
	return fmt.Errorf("HTTP %d %s: %s", r.Status, r.Problem.Error, r.Problem.Message)
}

// Raw sends body as it is (nil for none) and reads the answer.
func (c *Client) Raw(method, path string, body []byte) (*Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, c.BaseURL+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	r := &Response{Status: resp.StatusCode, Body: b}
	if r.Status >= 300 {
		json.Unmarshal(b, &r.Problem)
	}
	return r, nil
}

// Do sends in as JSON (nil for no body) and decodes a 2xx answer into out
// (when not nil). A non-2xx answer is returned with Err() set.
func (c *Client) Do(method, path string, in, out any) (*Response, error) {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return nil, err
		}
	}
	r, err := c.Raw(method, path, body)
	if err != nil {
		return nil, err
	}
	if err := r.Err(); err != nil {
		return r, err
	}
	if out != nil && len(r.Body) > 0 {
		if err := json.Unmarshal(r.Body, out); err != nil {
			return r, fmt.Errorf("decode %s %s: %w", method, path, err)
		}
	}
	return r, nil
}

// Login signs in with key (username "" for a discoverable login) and keeps
// the session's token.
func (c *Client) Login(key *Key, username string) (*api.Session, error) {
	var begin api.CeremonyBegin
	if _, err := c.Do("POST", api.Version+"/login/begin", api.LoginBeginRequest{Username: username}, &begin); err != nil {
		return nil, err
	}
	cred, err := key.Get(begin.PublicKey)
	if err != nil {
		return nil, err
	}
	var sess api.Session
	if _, err := c.Do("POST", api.Version+"/login/finish", api.LoginFinishRequest{CeremonyID: begin.CeremonyID, Credential: cred}, &sess); err != nil {
		return nil, err
	}
	c.Token = sess.Token
	return &sess, nil
}

// Redeem trades an enrollment code for a registration session.
func (c *Client) Redeem(username, code string) (*api.Session, error) {
	var sess api.Session
	if _, err := c.Do("POST", api.Version+"/grants/redeem", api.GrantRedeemRequest{Username: username, Code: code}, &sess); err != nil {
		return nil, err
	}
	c.Token = sess.Token
	return &sess, nil
}

// Register enrolls key for the signed-in user.
func (c *Client) Register(key *Key, nickname string) (*api.Key, error) {
	var begin api.CeremonyBegin
	if _, err := c.Do("POST", api.Version+"/registration/begin", api.RegistrationBeginRequest{Nickname: nickname}, &begin); err != nil {
		return nil, err
	}
	cred, err := key.Create(begin.PublicKey)
	if err != nil {
		return nil, err
	}
	var k api.Key
	if _, err := c.Do("POST", api.Version+"/registration/finish", api.RegistrationFinishRequest{CeremonyID: begin.CeremonyID, Credential: cred}, &k); err != nil {
		return nil, err
	}
	return &k, nil
}

// Provision registers key on behalf of user (c holds an admin's session)
// in batch, as enterprise provisioning does.
func (c *Client) Provision(key *Key, user, nickname, batch string) (*api.Key, error) {
	var begin api.CeremonyBegin
	path := api.Version + "/users/" + url.PathEscape(user) + "/provisioning/"
	if _, err := c.Do("POST", path+"begin", api.ProvisionBeginRequest{Nickname: nickname}, &begin); err != nil {
		return nil, err
	}
	cred, err := key.Create(begin.PublicKey)
	if err != nil {
		return nil, err
	}
	var k api.Key
	if _, err := c.Do("POST", path+"finish", api.ProvisionFinishRequest{CeremonyID: begin.CeremonyID, Credential: cred, Batch: batch}, &k); err != nil {
		return nil, err
	}
	return &k, nil
}

// AuditExport reads the whole audit log through the admin API with c (an
// admin's session), fails the test unless its hash chain verifies, and
// returns the raw JSONL export and its entries.
func AuditExport(tb testing.TB, c *Client) ([]byte, []audit.Entry) {
	tb.Helper()
	r, err := c.Raw("GET", api.Version+"/audit", nil)
	if err != nil || r.Status != 200 {
		tb.Fatalf("audit export: %v %+v", err, r)
	}
	if _, err := audit.Verify(bytes.NewReader(r.Body)); err != nil {
		tb.Fatalf("the audit chain does not verify: %v", err)
	}
	var entries []audit.Entry
	for _, line := range bytes.Split(bytes.TrimSpace(r.Body), []byte("\n")) {
		var en audit.Entry
		if err := json.Unmarshal(line, &en); err != nil {
			tb.Fatal(err)
		}
		entries = append(entries, en)
	}
	return r.Body, entries
}
