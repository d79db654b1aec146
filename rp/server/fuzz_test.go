package server_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/keydesk/keydesk/rp/api"
)

// FuzzJSONHandlers sends arbitrary bodies to every route that reads JSON,
// signed in as an admin (so that every route is reached): the answer is
// never a 5xx, and an error is always a well-formed Problem.
func FuzzJSONHandlers(f *testing.F) {
	routes := []string{
		"POST /v1/login/begin", "POST /v1/login/finish", "POST /v1/grants/redeem",
		"POST /v1/registration/begin", "POST /v1/registration/finish",
		"PATCH /v1/me/keys/AAAA", "POST /v1/me/keys/AAAA/revoke",
		"POST /v1/users", "POST /v1/users/root/grants", "POST /v1/users/root/keys/AAAA/revoke",
		"PUT /v1/users/root/roles", "PUT /v1/users/root/disabled", "PUT /v1/policy",
		"POST /v1/recovery/sessions", "POST /v1/recovery/sessions/AAAA/describe", "POST /v1/recovery/sessions/AAAA/refuse",
		"POST /v1/recovery/sessions/AAAA/approve/begin", "POST /v1/recovery/sessions/AAAA/approve/finish",
		"POST /v1/recovery/sessions/AAAA/redeem", "POST /v1/recovery/codes/redeem",
		"POST /v1/users/root/recovery-grants", "POST /v1/recovery-grants/AAAA/approve",
		"POST /v1/users/root/provisioning/begin", "POST /v1/users/root/provisioning/finish",
	}
	seeds := []string{
		`{}`, `{"username":"root"}`, `{"ceremonyId":"x","credential":{"id":"AAAA","type":"public-key","response":{}}}`,
		`{"username":"root","code":"AAAA-BBBB-CCCC-DDDD"}`, `{"nickname":"k"}`, `{"reason":"lost"}`,
		`{"name":"x","roles":["helpdesk"]}`, `{"ttlSeconds":60,"maxUses":1}`, `{"roles":["admin"]}`,
		`{"disabled":false}`, `{"attestation":"any","deniedAaguids":["ef185f03-0d9a-4909-8ff0-93c535aa9ecd"]}`,
		`{"credential":null}`, `[]`, `null`, `{"ceremonyId":1}`, "\x00", `{"a":` + "\"\xff\"}",
		`{"username":"root","desktopName":"laptop","desktopPublicKey":"` + desktopKeySeed + `"}`,
		`{"username":"root","desktopName":"laptop","desktopPublicKey":"AAAA"}`, `{"secret":"x"}`, `{"code":"ABCD-EFGH"}`,
		`{"secret":"x","number":42}`, `{"secret":"x","credential":{}}`, `{"signature":"MEUCIQ"}`,
		`{"username":"root","code":"AAAAA-BBBBB-CCCCC-DDDDD"}`,
		`{"verification":["photo-id","callback-known-number","manager-confirmation"],"note":"seen"}`,
		`{"ceremonyId":"x","batch":"2026-11","credential":{"id":"AAAA","type":"public-key","response":{}}}`,
	}
	for i := range routes {
		for _, s := range seeds {
			f.Add(uint8(i), []byte(s))
		}
	}
	e := newEnv(f, backends[0].dsn)
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		method, path := splitRoute(routes[int(route)%len(routes)])
		r, err := e.admin.Raw(method, path, body)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status >= 500 {
			t.Fatalf("%s %s %q: %d %s", method, path, body, r.Status, r.Body)
		}
		if r.Status >= 400 {
			var p api.Problem
			if err := json.Unmarshal(r.Body, &p); err != nil || p.Error == "" || p.Message == "" {
				t.Fatalf("%s %s: %d with body %q", method, path, r.Status, r.Body)
			}
		}
		if r.Status == http.StatusOK || r.Status == http.StatusCreated {
			if !json.Valid(r.Body) {
				t.Fatalf("%s %s: invalid JSON answer %q", method, path, r.Body)
			}
		}
	})
}

// desktopKeySeed is a desktop's P-256 public key (SubjectPublicKeyInfo,
// base64url), so that the fuzzer starts from a handoff that is created.
const desktopKeySeed = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEJN4aMdDiUYqPWrOFYx0nWASa5d84-qTKo6Yg6ykSttYWxed94gy8c6OY-ptIbwd1PDF4Lh-lBIDuOxRxfPbJKg"

func splitRoute(s string) (string, string) {
	for i := range s {
		if s[i] == ' ' {
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}
