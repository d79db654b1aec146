package platform

import (
	"context"
	"errors"
)

// SelectAmong asks every key to blink (authenticatorSelection) and returns
// the first one touched, cancelling the others, as a platform does when
// several keys are plugged in. With one key it returns that key without
// asking for a touch. It fails with ErrNoDevice for no keys, and with the
// first key's error if none was touched (denied, timed out, or ctx ended).
func SelectAmong(ctx context.Context, keys []Authenticator) (Authenticator, error) {
	switch len(keys) {
	case 0:
		return nil, &Error{Op: "select a key", Kind: ErrNoDevice, RetriesLeft: -1}
	case 1:
		return keys[0], nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		key Authenticator
		err error
	}
	results := make(chan result, len(keys))
	for _, k := range keys {
		go func() { results <- result{k, k.Select(ctx)} }()
	}
	var chosen Authenticator
	var firstErr error
	for range keys {
		r := <-results
		switch {
		case r.err == nil && chosen == nil:
			chosen = r.key
			cancel() // the others stop blinking
		case r.err != nil && firstErr == nil && !errors.Is(r.err, ErrCancelled):
			firstErr = r.err
		}
	}
	if chosen != nil {
		return chosen, nil
	}
	if firstErr == nil {
		firstErr = &Error{Op: "select a key", Kind: ErrCancelled, RetriesLeft: -1, Err: ctx.Err()}
	}
	return nil, firstErr
}
