// Package models names and pictures security-key models by AAGUID for
// the screens. It reads the service's list of models once
// (GET /v1/authenticators, through rpclient), which names no key, so the
// service does not learn what keys a person plugs in; the list comes
// from the FIDO metadata the service loaded, which is where a hardware
// model's picture comes from, as Keydesk ships none.
package models

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/keydesk/keydesk/assets"
	"github.com/keydesk/keydesk/rp/api"
)

// ErrUnknownModel is returned, wrapped, for a model the service does not
// know (or for the all-zero AAGUID, which names no model).
var ErrUnknownModel = errors.New("unknown key model")

// Source lists the models the service can name: *rpclient.Client.
type Source interface {
	Authenticators(ctx context.Context) ([]api.Authenticator, error)
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

// DefaultRetryAfter is how long a Catalog remembers that reading the
// list failed (the service unreachable) before it asks again.
const DefaultRetryAfter = time.Minute

// Catalog knows the models of one service. It is safe for concurrent
// use.
type Catalog struct {
	src Source
	// retryAfter is how long a failure to read the list is kept.
	retryAfter time.Duration
	now        func() time.Time

	mu sync.Mutex
	// read is the reading of the list, nil before the first question
	// and after a failure older than retryAfter.
	read *reading
	// decoded are the models asked for, their pictures decoded.
	decoded map[[16]byte]Model
}

// reading is one reading of the list: done is closed once byID or err
// is set; at is when it ended.
type reading struct {
	done chan struct{}
	byID map[[16]byte]api.Authenticator
	err  error
	at   time.Time
}

// New returns a Catalog that reads src's list. A failure to read it is
// kept for retryAfter (DefaultRetryAfter when zero), so that a screen
// redrawn every second does not hammer a service that is down.
func New(src Source, retryAfter time.Duration) *Catalog {
	if retryAfter <= 0 {
		retryAfter = DefaultRetryAfter
	}
	return &Catalog{src: src, retryAfter: retryAfter, now: time.Now, decoded: map[[16]byte]Model{}}
}

// Model returns what the service knows of the model aaguid names,
// reading the service's list the first time. A reading under way is
// waited for rather than repeated; ctx bounds only this caller's wait.
func (c *Catalog) Model(ctx context.Context, aaguid [16]byte) (Model, error) {
	if aaguid == ([16]byte{}) {
		return Model{}, fmt.Errorf("describe key model: %w", ErrUnknownModel)
	}
	c.mu.Lock()
	r := c.read
	if r != nil && r.err != nil && c.now().Sub(r.at) >= c.retryAfter {
		r = nil
	}
	if r == nil {
		r = &reading{done: make(chan struct{})}
		c.read = r
		// The reading outlives a caller that gives up: the next one
		// will want the list. It is bounded by the client's own
		// timeouts and retries.
		go c.readList(context.WithoutCancel(ctx), r)
	}
	c.mu.Unlock()
	select {
	case <-r.done:
	case <-ctx.Done():
		return Model{}, ctx.Err()
	}
	if r.err != nil {
		return Model{}, fmt.Errorf("describe key model: %w", r.err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if m, ok := c.decoded[aaguid]; ok {
		return m, nil
	}
	a, ok := r.byID[aaguid]
	if !ok {
		return Model{}, fmt.Errorf("describe key model %s: %w", assets.FormatAAGUID(aaguid), ErrUnknownModel)
	}
	m := Model{AAGUID: aaguid, Name: a.Name, Icon: decode(a.Icon), IconDark: decode(a.IconDark), FromMetadata: a.Source == api.SourceMetadata}
	c.decoded[aaguid] = m
	return m, nil
}

// readList reads the service's list and settles r.
func (c *Catalog) readList(ctx context.Context, r *reading) {
	list, err := c.src.Authenticators(ctx)
	byID := make(map[[16]byte]api.Authenticator, len(list))
	for _, a := range list {
		if id, perr := assets.ParseAAGUID(a.AAGUID); perr == nil {
			byID[id] = a
		}
	}
	c.mu.Lock()
	r.byID, r.err, r.at = byID, err, c.now()
	c.mu.Unlock()
	close(r.done)
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
