package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/keydesk/keydesk/rp/rptest"
	"github.com/keydesk/keydesk/rp/server"
	"github.com/keydesk/keydesk/rp/storage"
)

// The relying party every ceremony is for, as the server tests use it.
const (
	rpID          = "localhost"
	rpDisplayName = "Keydesk benchmark"
	origin        = "https://localhost"
	// ceremonyTTL is the server's default, used by the bare loop too.
	ceremonyTTL = 5 * time.Minute
)

// newWebAuthn is go-webauthn configured as server.New configures it.
func newWebAuthn() (*webauthn.WebAuthn, error) {
	return webauthn.New(&webauthn.Config{
		RPID:          rpID,
		RPDisplayName: rpDisplayName,
		RPOrigins:     []string{origin},
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Enforce: true, Timeout: ceremonyTTL},
			Registration: webauthn.TimeoutConfig{Enforce: true, Timeout: ceremonyTTL},
		},
	})
}

// waUser is a user as go-webauthn sees it, with their one credential.
type waUser struct {
	u     *storage.User
	creds []webauthn.Credential
}

func (w *waUser) WebAuthnID() []byte                         { return w.u.ID }
func (w *waUser) WebAuthnName() string                       { return w.u.Name }
func (w *waUser) WebAuthnDisplayName() string                { return w.u.DisplayName }
func (w *waUser) WebAuthnCredentials() []webauthn.Credential { return w.creds }

// population is the enrolled users, made once and stored in every
// backend: user i holds one non-discoverable credential of keys[i %
// len(keys)].
type population struct {
	users []waUser
	// stored is users[i]'s credential as rp/server stores it.
	stored []storage.Credential
	keys   []*rptest.Key
	// byKey lists each key's users.
	byKey [][]int
}

// enroll makes n users and registers a credential for each on a pool of
// nkeys software keys, each credential verified by go-webauthn's
// registration ceremony. The keys work in parallel, each on its own users.
func enroll(ctx context.Context, n, nkeys int) (*population, error) {
	wa, err := newWebAuthn()
	if err != nil {
		return nil, err
	}
	p := &population{users: make([]waUser, n), stored: make([]storage.Credential, n),
		keys: make([]*rptest.Key, nkeys), byKey: make([][]int, nkeys)}
	now := time.Now()
	for i := range p.users {
		u := server.NewUser(fmt.Sprintf("user%05d", i), fmt.Sprintf("Benchmark User %d", i), []storage.Role{storage.RoleUser}, now)
		p.users[i].u = &u
		p.byKey[i%nkeys] = append(p.byKey[i%nkeys], i)
	}
	errs := make([]error, nkeys)
	var wg sync.WaitGroup
	for k := range p.keys {
		if p.keys[k], err = rptest.NewKey(origin); err != nil {
			return nil, fmt.Errorf("software key: %w", err)
		}
		wg.Go(func() {
			for _, i := range p.byKey[k] {
				if ctx.Err() != nil {
					errs[k] = ctx.Err()
					return
				}
				if err := p.register(wa, k, i, now); err != nil {
					errs[k] = fmt.Errorf("user %d on key %d: %w", i, k, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return p, nil
}

// register runs a registration ceremony for user i on key k, without
// HTTP: options as the server makes them (but with residentKey
// "discouraged", so that the key keeps nothing and can hold any number of
// credentials), the key's RegistrationResponseJSON, go-webauthn's
// verification, and the credential as rp/server's storedCredential keeps
// it.
func (p *population) register(wa *webauthn.WebAuthn, k, i int, now time.Time) error {
	u := &p.users[i]
	creation, sd, err := wa.BeginRegistration(u,
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			ResidentKey:      protocol.ResidentKeyRequirementDiscouraged,
			UserVerification: protocol.VerificationPreferred,
		}),
		webauthn.WithConveyancePreference(protocol.PreferNoAttestation),
	)
	if err != nil {
		return err
	}
	options, err := json.Marshal(creation.Response)
	if err != nil {
		return err
	}
	response, err := p.keys[k].Create(options)
	if err != nil {
		return fmt.Errorf("key: %w", err)
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return fmt.Errorf("parse registration: %w", err)
	}
	cred, err := wa.CreateCredential(u, *sd, parsed)
	if err != nil {
		return fmt.Errorf("verify registration: %w", err)
	}
	u.creds = []webauthn.Credential{*cred}
	p.stored[i], err = server.StoredCredential(u.u.ID, "benchmark key", cred, now)
	return err
}

// seedBatch is how many users (with their credential) go in one
// transaction.
const seedBatch = 2000

// store writes the population into st, seedBatch users a transaction, and
// returns the number of transactions.
func (p *population) store(ctx context.Context, st storage.Store) (int, error) {
	txs := 0
	for from := 0; from < len(p.users); from += seedBatch {
		to := min(from+seedBatch, len(p.users))
		err := st.Tx(ctx, func(tx storage.Tx) error {
			for i := from; i < to; i++ {
				if err := tx.CreateUser(*p.users[i].u); err != nil {
					return fmt.Errorf("user %s: %w", p.users[i].u.Name, err)
				}
				if err := tx.CreateCredential(p.stored[i]); err != nil {
					return fmt.Errorf("credential of %s: %w", p.users[i].u.Name, err)
				}
			}
			return nil
		})
		if err != nil {
			return txs, err
		}
		txs++
	}
	return txs, nil
}
