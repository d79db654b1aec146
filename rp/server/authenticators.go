package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/go-webauthn/webauthn/metadata"
	"github.com/google/uuid"

	"github.com/keydesk/keydesk/assets"
	"github.com/keydesk/keydesk/rp/api"
	"github.com/keydesk/keydesk/rp/mds"
)

// Key models, named and pictured for clients: from the FIDO metadata
// when the server loaded a BLOB that lists the model, else from the names
// the server ships. Both routes are public: the metadata is published by
// the FIDO Alliance, and a person looks at a key's model before signing
// in. Clients should read the whole list (GET /v1/authenticators), which
// names no key, rather than ask about the model of each key plugged in,
// which would tell the server what keys a person holds.

// authenticator describes one model, from the catalog.
func (s *Server) authenticator(w http.ResponseWriter, r *http.Request, _ *caller) error {
	id, err := assets.ParseAAGUID(r.PathValue("aaguid"))
	if err != nil {
		return problem(http.StatusBadRequest, "bad_aaguid", "The path does not name an AAGUID (a dashed UUID).")
	}
	c, err := s.currentCatalog(r.Context())
	if err != nil {
		return err
	}
	out, ok := c.byID[id]
	if !ok {
		return problem(http.StatusNotFound, "unknown_authenticator", "This server knows no authenticator model with that AAGUID.")
	}
	// The answer changes only when the metadata does (monthly).
	w.Header().Set("Cache-Control", "public, max-age=3600")
	writeJSON(w, http.StatusOK, out)
	return nil
}

// authenticators lists every model the server can name, from a catalog
// built once per metadata BLOB; a client that has the list (its ETag)
// gets 304.
func (s *Server) authenticators(w http.ResponseWriter, r *http.Request, _ *caller) error {
	c, err := s.currentCatalog(r.Context())
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Header().Set("ETag", c.etag)
	for _, tag := range strings.Split(r.Header.Get("If-None-Match"), ",") {
		if strings.TrimSpace(tag) == c.etag {
			w.WriteHeader(http.StatusNotModified)
			return nil
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_, err = w.Write(c.body)
	return err
}

// currentCatalog is the catalog of the metadata in use, built at the
// first request after the metadata changed; both routes answer from it,
// so an icon is checked once per BLOB, not once per request.
func (s *Server) currentCatalog(ctx context.Context) (*catalog, error) {
	m := s.mds.Load()
	if c := s.catalog.Load(); c != nil && c.from == m {
		return c, nil
	}
	var provider metadata.Provider
	if m != nil {
		provider = m.provider
	}
	c, err := buildCatalog(ctx, provider)
	if err != nil {
		return nil, err
	}
	c.from = m
	s.catalog.Store(c)
	return c, nil
}

// catalog is GET /v1/authenticators's answer and its ETag, built from
// the metadata from (nil: none).
type catalog struct {
	body []byte
	etag string
	from *mdsState
	// byID answers GET /v1/authenticators/{aaguid}.
	byID map[[16]byte]api.Authenticator
}

// buildCatalog lists the models provider (nil for none) describes and
// those the server ships names for, sorted by AAGUID.
func buildCatalog(ctx context.Context, provider metadata.Provider) (*catalog, error) {
	ids := assets.KnownAAGUIDs()
	if provider != nil {
		if listed, ok := mds.Models(provider); ok {
			for _, id := range listed {
				ids = append(ids, [16]byte(id))
			}
		}
	}
	out := api.Authenticators{Authenticators: []api.Authenticator{}}
	byID := map[[16]byte]api.Authenticator{}
	for _, id := range ids {
		if _, seen := byID[id]; seen {
			continue
		}
		if a, ok := describeModel(ctx, provider, id); ok {
			byID[id] = a
			out.Authenticators = append(out.Authenticators, a)
		}
	}
	slices.SortFunc(out.Authenticators, func(a, b api.Authenticator) int { return strings.Compare(a.AAGUID, b.AAGUID) })
	body, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(body)
	return &catalog{body: body, etag: `"` + hex.EncodeToString(sum[:16]) + `"`, byID: byID}, nil
}

// describeModel is what the server knows of the model id names: the
// metadata's description and icons, else the shipped name (and, for the
// software key, its picture); false for an unknown model or the zero
// AAGUID.
func describeModel(ctx context.Context, provider metadata.Provider, id [16]byte) (api.Authenticator, bool) {
	if id == ([16]byte{}) {
		return api.Authenticator{}, false
	}
	out := api.Authenticator{AAGUID: assets.FormatAAGUID(id)}
	if provider != nil {
		// A lookup error means no entry: the BLOB lists the model or not.
		if e, err := provider.GetEntry(ctx, uuid.UUID(id)); err == nil && e != nil && e.MetadataStatement.Description != "" {
			st := &e.MetadataStatement
			out.Name, out.Source = st.Description, api.SourceMetadata
			out.Icon = iconOf(st.Icon)
			out.IconDark = iconOf(st.IconDark)
		}
	}
	if out.Name == "" {
		name, ok := assets.AAGUIDName(id)
		if !ok {
			return api.Authenticator{}, false
		}
		out.Name, out.Source = name, api.SourceBuiltin
	}
	if out.Icon == "" {
		out.Icon, _ = assets.AAGUIDIcon(id)
	}
	return out, true
}

// iconOf is a metadata statement's icon as the API serves it: "" for
// none, or for one that clients would refuse (api.DecodeIcon), so that a
// bad entry in the BLOB costs a picture, not the name.
func iconOf(u *url.URL) string {
	if u == nil {
		return ""
	}
	dataURL := u.String()
	if _, _, err := api.DecodeIcon(dataURL); err != nil {
		return ""
	}
	return dataURL
}
