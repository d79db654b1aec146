package platform

import "github.com/keydesk/keydesk/assets"

// ModelName names a key's model from its AAGUID, or returns "" for an
// unknown model (and for the all-zero AAGUID of keys that hide it).
func ModelName(aaguid [16]byte) string {
	name, _ := assets.AAGUIDName(aaguid)
	return name
}
