package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
)

// bareResult is the bare validation loop's measurement.
type bareResult struct {
	n          int // validations
	assertions int // distinct assertions validated in turn
	elapsed    time.Duration
}

func (b bareResult) perSecond() float64 {
	if b.elapsed <= 0 {
		return 0
	}
	return float64(b.n) / b.elapsed.Seconds()
}

// assertion is a login ceremony's state as a server holds it when the
// finish arrives: the user, the SessionData of the begin, and the parsed
// AuthenticationResponseJSON.
type assertion struct {
	user   *waUser
	sd     webauthn.SessionData
	parsed *protocol.ParsedCredentialAssertionData
}

// bareValidation pre-generates n assertions (one for each of users 0..n-1,
// from their keys, as the server's begin would ask for them), then times
// webauthn.ValidateLogin over them in turn for d in one goroutine: the
// verification no server can avoid (clientDataJSON, rpIdHash, flags and
// the ES256 signature), without HTTP, JSON decoding or storage.
func bareValidation(ctx context.Context, p *population, n int, d time.Duration) (bareResult, error) {
	wa, err := newWebAuthn()
	if err != nil {
		return bareResult{}, err
	}
	as := make([]assertion, n)
	for i := range as {
		u := &p.users[i]
		options, sd, err := wa.BeginLogin(u, webauthn.WithUserVerification(protocol.VerificationPreferred))
		if err != nil {
			return bareResult{}, err
		}
		req, err := json.Marshal(options.Response)
		if err != nil {
			return bareResult{}, err
		}
		resp, err := p.keys[i%len(p.keys)].Get(req)
		if err != nil {
			return bareResult{}, fmt.Errorf("key: %w", err)
		}
		parsed, err := protocol.ParseCredentialRequestResponseBytes(resp)
		if err != nil {
			return bareResult{}, fmt.Errorf("parse assertion: %w", err)
		}
		as[i] = assertion{user: u, sd: *sd, parsed: parsed}
	}
	res := bareResult{assertions: n}
	start := time.Now()
	end := start.Add(d)
	for now := start; now.Before(end); now = time.Now() {
		a := &as[res.n%n]
		if _, err := wa.ValidateLogin(a.user, a.sd, a.parsed); err != nil {
			return res, fmt.Errorf("validation %d: %w", res.n, err)
		}
		res.n++
		if res.n%256 == 0 && ctx.Err() != nil {
			return res, ctx.Err()
		}
	}
	res.elapsed = time.Since(start)
	return res, nil
}
