package server

import (
	"net/http"
	"net/url"

	"github.com/google/uuid"

	"github.com/keydesk/keydesk/assets"
	"github.com/keydesk/keydesk/rp/api"
)

// authenticator describes a key model by its AAGUID, for clients to name
// and picture keys: from the FIDO metadata when the server loaded a BLOB
// that lists the model, else from the names the server ships. It is
// public: the metadata is published by the FIDO Alliance, and a person
// looks at a key's model before signing in.
func (s *Server) authenticator(w http.ResponseWriter, r *http.Request, _ *caller) error {
	id, err := assets.ParseAAGUID(r.PathValue("aaguid"))
	if err != nil {
		return problem(http.StatusBadRequest, "bad_aaguid", "The path does not name an AAGUID (a dashed UUID).")
	}
	out := api.Authenticator{AAGUID: assets.FormatAAGUID(id)}
	if m := s.mds.Load(); m != nil && id != ([16]byte{}) {
		// A lookup error means no entry: the BLOB lists the model or not.
		if e, err := m.provider.GetEntry(r.Context(), uuid.UUID(id)); err == nil && e != nil {
			st := &e.MetadataStatement
			out.Name, out.Source = st.Description, api.SourceMetadata
			out.Icon = iconOf(st.Icon)
			out.IconDark = iconOf(st.IconDark)
		}
	}
	if out.Name == "" {
		if name, ok := assets.AAGUIDName(id); ok {
			out.Name, out.Source = name, api.SourceBuiltin
		}
	}
	if out.Name == "" {
		return problem(http.StatusNotFound, "unknown_authenticator", "This server knows no authenticator model with that AAGUID.")
	}
	if out.Icon == "" {
		out.Icon, _ = assets.AAGUIDIcon(id)
	}
	// The answer changes only when the metadata does (monthly).
	w.Header().Set("Cache-Control", "public, max-age=3600")
	writeJSON(w, http.StatusOK, out)
	return nil
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
