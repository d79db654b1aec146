package softkey

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
)

// maxCBORDepth is how deeply requests may nest. CTAP 2.1 §8 lets
// authenticators limit nesting to four levels; the deepest request
// (hmac-secret inside getAssertion extensions, carrying a COSE key) needs four.
const maxCBORDepth = 4

// The largest arrays and maps a request may hold. checkCanonical enforces
// them as well as the decoder, so that whatever it accepts decodes.
const (
	maxCBORArrayElements = 1024
	maxCBORMapPairs      = 64
)

var (
	decMode cbor.DecMode
	encMode cbor.EncMode
)

func init() {
	var err error
	decMode, err = cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           cbor.TagsForbidden,
		MaxNestedLevels:  maxCBORDepth + 1,
		MaxArrayElements: maxCBORArrayElements,
		MaxMapPairs:      maxCBORMapPairs,
		UTF8:             cbor.UTF8RejectInvalid,
		IntDec:           cbor.IntDecConvertSignedOrFail,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	encMode, err = cbor.CTAP2EncOptions().EncMode()
	if err != nil {
		panic(err)
	}
}

// checkCanonical reports ErrInvalidCBOR unless b is exactly one well-formed
// data item in CTAP2 canonical form (§8. Message Encoding): definite lengths,
// shortest integer and length encodings, text in valid UTF-8, map keys
// unique, sorted (major type, then length, then bytes) and never arrays or
// maps, no tags, no floating point, no more than maxCBORDepth levels of
// nesting, and no more elements than the decoder takes.
func checkCanonical(b []byte) error {
	n, err := canonicalItem(b, 0)
	if err != nil {
		return err
	}
	if n != len(b) {
		return ErrInvalidCBOR
	}
	return nil
}

// canonicalItem checks the item at the start of b and returns its length.
func canonicalItem(b []byte, depth int) (int, error) {
	if len(b) == 0 {
		return 0, ErrInvalidCBOR
	}
	major := b[0] >> 5
	info := b[0] & 0x1f
	var arg uint64
	hdr := 1
	switch {
	case info < 24:
		arg = uint64(info)
	case info == 24:
		if len(b) < 2 || b[1] < 24 {
			return 0, ErrInvalidCBOR
		}
		arg, hdr = uint64(b[1]), 2
	case info == 25:
		if len(b) < 3 {
			return 0, ErrInvalidCBOR
		}
		arg, hdr = uint64(binary.BigEndian.Uint16(b[1:])), 3
		if arg <= 0xff {
			return 0, ErrInvalidCBOR
		}
	case info == 26:
		if len(b) < 5 {
			return 0, ErrInvalidCBOR
		}
		arg, hdr = uint64(binary.BigEndian.Uint32(b[1:])), 5
		if arg <= 0xffff {
			return 0, ErrInvalidCBOR
		}
	case info == 27:
		if len(b) < 9 {
			return 0, ErrInvalidCBOR
		}
		arg, hdr = binary.BigEndian.Uint64(b[1:]), 9
		if arg <= 0xffffffff {
			return 0, ErrInvalidCBOR
		}
	default: // 28-30 reserved, 31 indefinite length
		return 0, ErrInvalidCBOR
	}
	switch major {
	case 0, 1: // unsigned and negative integers
		return hdr, nil
	case 2, 3: // byte and text strings
		if arg > uint64(len(b)-hdr) {
			return 0, ErrInvalidCBOR
		}
		if major == 3 && !utf8.Valid(b[hdr:hdr+int(arg)]) {
			return 0, ErrInvalidCBOR
		}
		return hdr + int(arg), nil
	case 4, 5: // arrays and maps
		if depth >= maxCBORDepth {
			return 0, ErrInvalidCBOR
		}
		if (major == 4 && arg > maxCBORArrayElements) || (major == 5 && arg > maxCBORMapPairs) {
			return 0, ErrInvalidCBOR
		}
		items := arg
		if major == 5 {
			items *= 2
		}
		if items > uint64(len(b)) { // every item takes at least one byte
			return 0, ErrInvalidCBOR
		}
		off := hdr
		var prevKey []byte
		for i := uint64(0); i < items; i++ {
			n, err := canonicalItem(b[off:], depth+1)
			if err != nil {
				return 0, err
			}
			if major == 5 && i%2 == 0 {
				// No CTAP structure has array or map keys, and Go
				// cannot hold them as keys of a map[any]any.
				if k := b[off] >> 5; k == 4 || k == 5 {
					return 0, ErrInvalidCBOR
				}
				key := b[off : off+n]
				if prevKey != nil && !keyLess(prevKey, key) {
					return 0, ErrInvalidCBOR
				}
				prevKey = key
			}
			off += n
		}
		return off, nil
	case 6: // tags are not allowed in CTAP2
		return 0, ErrInvalidCBOR
	default: // simple values: only false, true and null have a use in CTAP
		if info >= 20 && info <= 22 {
			return 1, nil
		}
		return 0, ErrInvalidCBOR
	}
}

// keyLess orders encoded map keys as CTAP2 canonical CBOR requires: lower
// major type first, then shorter encoding, then bytewise.
func keyLess(a, b []byte) bool {
	if a[0]>>5 != b[0]>>5 {
		return a[0]>>5 < b[0]>>5
	}
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return bytes.Compare(a, b) < 0
}

// unmarshal decodes a request after checking it is canonical, mapping decoder
// failures to the status codes real keys return.
func unmarshal(b []byte, v any) error {
	if err := checkCanonical(b); err != nil {
		return err
	}
	return decodeStatus(decMode.Unmarshal(b, v))
}

// decodeStatus maps a CBOR decoding error to a CTAP status.
func decodeStatus(err error) error {
	if err == nil {
		return nil
	}
	var typeErr *cbor.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return ErrCBORUnexpectedType
	}
	var status Status
	if errors.As(err, &status) {
		return status
	}
	return ErrInvalidCBOR
}

// marshal encodes a response in CTAP2 canonical form. Response types are
// built by this package, so a failure is a programming error.
func marshal(v any) []byte {
	b, err := encMode.Marshal(v)
	if err != nil {
		panic("softkey: encoding " + reflect.TypeOf(v).String() + ": " + err.Error())
	}
	return b
}
