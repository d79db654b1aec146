// Package models names and pictures security-key models by AAGUID for
// the screens. It asks the service (GET /v1/authenticators/{aaguid},
// through rpclient) once per model, keeps the answer for the run, and
// shares one request among the keys of a model that arrive together.
// The service's answer comes from the FIDO metadata it loaded: this is
// where a hardware model's picture comes from, as Keydesk ships none.
package models

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/keydesk/keydesk/enroll/rpclient"
	"github.com/keydesk/keydesk/rp/api"
)

// ErrUnknownModel is returned, wrapped, for a model the service does not
// know (or for the all-zero AAGUID, which names no model).
var ErrUnknownModel = errors.New("unknown key model")

// Source answers what the service knows of a model: *rpclient.Client.
type Source interface {
	Authenticator(ctx context.Context, aaguid [16]byte) (*api.Authenticator, error)
}

// Icon is a picture: PNG or SVG bytes (api.DecodeIcon checked them).
type Icon struct {
	// MediaType is api.IconPNG or api.IconSVG.
	MediaType string
	Data      []byte
}

// Extension is the file name extension of the picture's type, ".png" or
// ".svg": toolkits tell the two apart by name.
func (i Icon) Extension() string {
	if i.MediaType == api.IconSVG {
		return ".svg"
	}
	return ".png"
}

// Model is what the service knows of a model.
type Model struct {
	AAGUID [16]byte
	Name   string
	// Icon and IconDark are the pictures for light and dark backgrounds;
	// nil when the service has none.
	Icon, IconDark *Icon
	// FromMetadata is set when the name comes from the FIDO metadata
	// rather than from the names the service ships.
	FromMetadata bool
}

// IconFor returns the picture for a dark background or a light one: the
// dark picture when dark and there is one, else the light one (FIDO
// metadata often has only that), nil without pictures.
func (m Model) IconFor(dark bool) *Icon {
	if dark && m.IconDark != nil {
		return m.IconDark
	}
	return m.Icon
}

// DefaultRetryAfter is how long a Catalog remembers that a lookup failed
// (the service unreachable) before it asks again.
const DefaultRetryAfter = time.Minute

// Catalog looks models up at one service, remembering the answers. It is
// safe for concurrent use.
type Catalog struct {
	src Source
	// retryAfter is how long a failure other than "unknown" is kept.
	retryAfter time.Duration
	now        func() time.Time

	mu      sync.Mutex
	entries map[[16]byte]*entry
}

// entry is one model's lookup: done is closed once model and err are
// set; failedAt is when a failure other than "unknown" happened.
type entry struct {
	done     chan struct{}
	model    Model
	err      error
	failedAt time.Time
}

// New returns a Catalog that asks src. A failure other than an unknown
// model is kept for retryAfter (DefaultRetryAfter when zero), so that a
// list redrawn every second does not hammer a service that is down.
func New(src Source, retryAfter time.Duration) *Catalog {
	if retryAfter <= 0 {
		retryAfter = DefaultRetryAfter
	}
	return &Catalog{src: src, retryAfter: retryAfter, now: time.Now, entries: map[[16]byte]*entry{}}
}

// Model returns what the service knows of the model aaguid names. A
// lookup already under way for the model is waited for rather than
// repeated; ctx bounds only this caller's wait.
func (c *Catalog) Model(ctx context.Context, aaguid [16]byte) (Model, error) {
	if aaguid == ([16]byte{}) {
		return Model{}, fmt.Errorf("describe key model: %w", ErrUnknownModel)
	}
	c.mu.Lock()
	e, ok := c.entries[aaguid]
	if ok && !e.failedAt.IsZero() && c.now().Sub(e.failedAt) >= c.retryAfter {
		ok = false
	}
	if !ok {
		e = &entry{done: make(chan struct{})}
		c.entries[aaguid] = e
		// The lookup outlives a caller that gives up: the next one
		// will want the answer. It is bounded by the client's own
		// timeouts and retries.
		go c.lookup(context.WithoutCancel(ctx), aaguid, e)
	}
	c.mu.Unlock()
	select {
	case <-e.done:
		return e.model, e.err
	case <-ctx.Done():
		return Model{}, ctx.Err()
	}
}

// lookup asks the service and settles e.
func (c *Catalog) lookup(ctx context.Context, aaguid [16]byte, e *entry) {
	a, err := c.src.Authenticator(ctx, aaguid)
	var m Model
	switch {
	case errors.Is(err, rpclient.ErrNotFound):
		err = fmt.Errorf("describe key model: %w", ErrUnknownModel)
	case err == nil:
		m = Model{AAGUID: aaguid, Name: a.Name, Icon: decode(a.Icon), IconDark: decode(a.IconDark), FromMetadata: a.Source == api.SourceMetadata}
	}
	c.mu.Lock()
	e.model, e.err = m, err
	if err != nil && !errors.Is(err, ErrUnknownModel) {
		e.failedAt = c.now()
	}
	c.mu.Unlock()
	close(e.done)
}

// decode is an answer's picture, nil for none or one api.DecodeIcon
// refuses.
func decode(dataURL string) *Icon {
	if dataURL == "" {
		return nil
	}
	mt, data, err := api.DecodeIcon(dataURL)
	if err != nil {
		return nil
	}
	return &Icon{MediaType: mt, Data: data}
}
