package recovery

import (
	"context"
	"errors"
	"fmt"

	"github.com/keydesk/keydesk/enroll/rpclient"
	"github.com/keydesk/keydesk/rp/api"
)

// The refusals of a recovery code, for errors.Is. A refused code is also
// the enroll/rpclient error it came from (ErrUnauthorized,
// ErrRateLimited with its RetryAfter...).
var (
	// ErrBadCode: the user name and recovery code do not match; the
	// server does not say which is wrong.
	ErrBadCode = errors.New("that user name and recovery code do not match")
	// ErrCodeUsed: the code is right but was used already; each works
	// once.
	ErrCodeUsed = rpclient.ErrRecoveryCodeUsed
)

// RedeemCode trades username's recovery code (one of the ten the user
// printed; case, spaces and dashes do not matter) for a recovery session
// at the service client calls: the same kind of session as a QR handoff
// gives, for Recover. It returns the session (without its token) and the
// token, which client also uses from then on. The code is sent once, never
// repeated after it may have reached the server: the server spends it.
// Guessing is throttled by the server (rpclient.ErrRateLimited, with the
// wait in its RetryAfter).
func RedeemCode(ctx context.Context, client *rpclient.Client, username, code string) (*api.Session, string, error) {
	if client == nil {
		return nil, "", errors.New("recovery: redeem code: no API client")
	}
	sess, token, err := client.RedeemRecoveryCode(ctx, username, code)
	var re *rpclient.Error
	switch {
	case err == nil:
		return sess, token, nil
	case errors.As(err, &re) && re.Code == "bad_recovery_code":
		return nil, "", fmt.Errorf("recovery: redeem code: %w: %w", ErrBadCode, err)
	}
	return nil, "", fmt.Errorf("recovery: redeem code: %w", err)
}
