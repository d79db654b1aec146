package webauthn

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
)

// jsonObject is one JSON object of the options, read member by member.
// encoding/json would match member names case-insensitively
// ("Challenge" for "challenge"), which JSON.parse and the WebIDL
// dictionaries of a browser never do; reading a map of raw members keeps
// names exact, lets each member's type be checked with a message naming
// it, and ignores unknown members as a browser does. A member that is
// null counts as absent.
type jsonObject struct {
	path    string
	members map[string]json.RawMessage
}

// badOptions is an ErrBadOptions naming the member at path.
func badOptions(path, format string, args ...any) *Error {
	return newError(ErrBadOptions, path+" "+fmt.Sprintf(format, args...))
}

// jsonKind names the type of a raw JSON value for error messages.
func jsonKind(raw json.RawMessage) string {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "a list"
	case '"':
		return "a string"
	case 't', 'f':
		return "true or false"
	case 'n':
		return "null"
	}
	return "a number"
}

// isNull reports whether raw is JSON null.
func isNull(raw json.RawMessage) bool { return jsonKind(raw) == "null" }

// parseObject reads raw, which must be a JSON object.
func parseObject(raw json.RawMessage, path string) (jsonObject, error) {
	if k := jsonKind(raw); k != "an object" {
		return jsonObject{}, badOptions(path, "must be an object, not %s", k)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return jsonObject{}, &Error{Kind: ErrBadOptions, Detail: path + " is not valid JSON", Err: err}
	}
	return jsonObject{path: path, members: m}, nil
}

// member returns the raw value of a member, and whether it is present and
// not null.
func (o jsonObject) member(name string) (json.RawMessage, bool) {
	raw, ok := o.members[name]
	if !ok || isNull(raw) {
		return nil, false
	}
	return raw, true
}

// sub is the path of a member, for messages.
func (o jsonObject) sub(name string) string {
	if o.path == "" {
		return name
	}
	return o.path + "." + name
}

// missing is the error of an absent required member.
func (o jsonObject) missing(name string) error {
	return badOptions(o.sub(name), "is missing")
}

// str reads a string member.
func (o jsonObject) str(name string, required bool) (string, bool, error) {
	raw, ok := o.member(name)
	if !ok {
		if required {
			return "", false, o.missing(name)
		}
		return "", false, nil
	}
	if k := jsonKind(raw); k != "a string" {
		return "", false, badOptions(o.sub(name), "must be a string, not %s", k)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, &Error{Kind: ErrBadOptions, Detail: o.sub(name) + " is not a valid JSON string", Err: err}
	}
	return s, true, nil
}

// boolean reads a true/false member.
func (o jsonObject) boolean(name string) (bool, bool, error) {
	raw, ok := o.member(name)
	if !ok {
		return false, false, nil
	}
	if k := jsonKind(raw); k != "true or false" {
		return false, false, badOptions(o.sub(name), "must be true or false, not %s", k)
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err != nil {
		return false, false, &Error{Kind: ErrBadOptions, Detail: o.sub(name) + " must be true or false", Err: err}
	}
	return b, true, nil
}

// number reads a numeric member.
func (o jsonObject) number(name string) (float64, bool, error) {
	raw, ok := o.member(name)
	if !ok {
		return 0, false, nil
	}
	if k := jsonKind(raw); k != "a number" {
		return 0, false, badOptions(o.sub(name), "must be a number, not %s", k)
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false, &Error{Kind: ErrBadOptions, Detail: o.sub(name) + " is not a usable number", Err: err}
	}
	return f, true, nil
}

// integer reads a member that must be a whole number within 32 bits, as
// WebIDL's long.
func (o jsonObject) integer(name string, required bool) (int, bool, error) {
	f, ok, err := o.number(name)
	if err != nil {
		return 0, false, err
	}
	if !ok {
		if required {
			return 0, false, o.missing(name)
		}
		return 0, false, nil
	}
	if f != math.Trunc(f) || f < math.MinInt32 || f > math.MaxInt32 {
		return 0, false, badOptions(o.sub(name), "must be a whole number")
	}
	return int(f), true, nil
}

// object reads an object member.
func (o jsonObject) object(name string, required bool) (jsonObject, bool, error) {
	raw, ok := o.member(name)
	if !ok {
		if required {
			return jsonObject{}, false, o.missing(name)
		}
		return jsonObject{}, false, nil
	}
	obj, err := parseObject(raw, o.sub(name))
	return obj, err == nil, err
}

// list reads an array member of at most maxLen entries.
func (o jsonObject) list(name string, required bool, maxLen int) ([]json.RawMessage, bool, error) {
	raw, ok := o.member(name)
	if !ok {
		if required {
			return nil, false, o.missing(name)
		}
		return nil, false, nil
	}
	if k := jsonKind(raw); k != "a list" {
		return nil, false, badOptions(o.sub(name), "must be a list, not %s", k)
	}
	var l []json.RawMessage
	if err := json.Unmarshal(raw, &l); err != nil {
		return nil, false, &Error{Kind: ErrBadOptions, Detail: o.sub(name) + " is not a valid JSON list", Err: err}
	}
	if len(l) > maxLen {
		return nil, false, badOptions(o.sub(name), "has %d entries; Keydesk accepts at most %d", len(l), maxLen)
	}
	return l, true, nil
}

// base64URL reads a Base64URLString member holding minLen to maxLen bytes.
func (o jsonObject) base64URL(name string, required bool, minLen, maxLen int) ([]byte, bool, error) {
	s, ok, err := o.str(name, required)
	if err != nil || !ok {
		return nil, false, err
	}
	// Four characters carry three bytes: refuse before decoding a string
	// that cannot fit.
	if len(s) > base64.URLEncoding.EncodedLen(maxLen) {
		return nil, false, badOptions(o.sub(name), "is too long; it must be at most %d bytes", maxLen)
	}
	b, err := decodeBase64URL(s)
	if err != nil {
		return nil, false, &Error{Kind: ErrBadOptions, Detail: o.sub(name) + " is not base64url", Err: err}
	}
	switch {
	case len(b) < minLen && minLen == 1:
		return nil, false, badOptions(o.sub(name), "is empty")
	case len(b) < minLen:
		return nil, false, badOptions(o.sub(name), "is %d bytes; it must be at least %d", len(b), minLen)
	case len(b) > maxLen:
		return nil, false, badOptions(o.sub(name), "is %d bytes; it must be at most %d", len(b), maxLen)
	}
	return b, true, nil
}

// decodeBase64URL decodes base64url (RFC 4648 §5), the encoding of
// WebAuthn's Base64URLString, without padding or with correct padding.
// Go's decoder skips CR and LF anywhere, and both alphabets differ only
// in two characters, so the alphabet is checked first: "+", "/" and
// whitespace are refused rather than silently accepted.
func decodeBase64URL(s string) ([]byte, error) {
	body := s
	for len(body) > 0 && body[len(body)-1] == '=' {
		body = body[:len(body)-1]
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		if (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '_' {
			return nil, fmt.Errorf("character %q at %d is not in the base64url alphabet", c, i)
		}
	}
	if len(body) != len(s) {
		return base64.URLEncoding.Strict().DecodeString(s)
	}
	return base64.RawURLEncoding.Strict().DecodeString(s)
}
