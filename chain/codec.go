package chain

import (
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// Size limits of decoded values. They bound what a peer can make a node
// allocate; the wire protocol (docs/protocol.md) repeats them.
const (
	// MaxEncodedBlockSize caps the canonical encoding of one block.
	MaxEncodedBlockSize = 8 << 20
	// MaxTxSize caps one transaction.
	MaxTxSize = 64 << 10
	// MaxBlockTxs caps the number of transactions in one block.
	MaxBlockTxs = 10_000
	// MaxBlockPayload caps the summed size of one block's transactions.
	MaxBlockPayload = 4 << 20
	// MaxValidators caps the size of a validator set.
	MaxValidators = 1024
	// MaxChainIDLen caps the length of a chain id.
	MaxChainIDLen = 64
	// maxArrayElements is the decoder's cap on any CBOR array. It is above
	// every per-field cap so that those produce the precise error.
	maxArrayElements = 1 << 16
	// maxNesting is the decoder's cap on nesting depth (a block nests 5 deep).
	maxNesting = 16
)

// ErrDecode is the reason of every error returned by [Decode].
var ErrDecode = errors.New("chain: malformed encoding")

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	eo := cbor.CoreDetEncOptions()
	eo.NilContainers = cbor.NilContainerAsEmpty
	eo.BinaryMarshaler = cbor.BinaryMarshalerByteString
	var err error
	if encMode, err = eo.EncMode(); err != nil {
		panic(err)
	}
	decMode, err = cbor.DecOptions{
		DupMapKey:          cbor.DupMapKeyEnforcedAPF,
		IndefLength:        cbor.IndefLengthForbidden,
		TagsMd:             cbor.TagsForbidden,
		ExtraReturnErrors:  cbor.ExtraDecErrorUnknownField,
		MaxNestedLevels:    maxNesting,
		MaxArrayElements:   maxArrayElements,
		MaxMapPairs:        1024,
		BinaryUnmarshaler:  cbor.BinaryUnmarshalerNone,
		ByteStringToString: cbor.ByteStringToStringAllowed,
		UTF8:               cbor.UTF8RejectInvalid,
		DefaultMapType:     nil,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// Encode returns the canonical CBOR encoding of v.
func Encode(v any) ([]byte, error) {
	b, err := encMode.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("chain: encode %T: %w", v, err)
	}
	return b, nil
}

func mustEncode(v any) []byte {
	b, err := encMode.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("chain: encode %T: %v", v, err))
	}
	return b
}

// Decode decodes data, which must hold exactly one CBOR item of at most
// maxSize bytes, into v. Indefinite lengths, tags, duplicate map keys, unknown
// fields, wrong array lengths, excess nesting and trailing bytes are all
// rejected. The error wraps [ErrDecode].
func Decode(data []byte, maxSize int, v any) error {
	if len(data) > maxSize {
		return fmt.Errorf("%w: %T is %d bytes, limit %d", ErrDecode, v, len(data), maxSize)
	}
	if err := decMode.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: %T: %w", ErrDecode, v, err)
	}
	return nil
}

// DecodeBlock decodes one block of at most [MaxEncodedBlockSize] bytes and
// checks its id against its data (see [Block.CheckID]). Malformed bytes give
// an error wrapping [ErrDecode], a wrong id a [*VerifyError] whose reason is
// [ErrBlockID].
func DecodeBlock(data []byte) (*Block, error) {
	var b Block
	if err := Decode(data, MaxEncodedBlockSize, &b); err != nil {
		return nil, err
	}
	if err := b.CheckID(); err != nil {
		return nil, err
	}
	return &b, nil
}
