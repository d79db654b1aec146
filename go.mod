module github.com/keydesk/keydesk

go 1.26

require (
	github.com/fxamacker/cbor/v2 v2.10.0 // indirect
	github.com/keys-pub/go-libfido2 v1.5.4-0.20230628025503-281619cff413 // indirect
	github.com/pkg/errors v0.9.1 // indirect
	github.com/x448/float16 v0.8.4 // indirect
)
