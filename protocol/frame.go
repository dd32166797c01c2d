package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/p2pnode/p2pnode/chain"
)

// Framing: every message on a stream is uvarint(len) || body, where body is
// the canonical CBOR encoding of the message and 1 ≤ len ≤ the message's
// limit. The length prefix is minimal (no redundant 0x80 continuation
// bytes) and is checked against the limit before anything is allocated.

// Sentinel errors of framing. Frame errors are the sender's fault.
var (
	ErrFrameTooLarge = errors.New("protocol: frame over the size limit")
	ErrFrameEmpty    = errors.New("protocol: empty frame")
	ErrFrameLength   = errors.New("protocol: malformed frame length")
)

// maxUvarintLen bounds the length prefix: lengths fit in 4 bytes of uvarint
// (< 2^28), far above any limit.
const maxUvarintLen = 4

// WriteMsg writes v as one frame.
func WriteMsg(w io.Writer, v any) error {
	body, err := chain.Encode(v)
	if err != nil {
		return err
	}
	return WriteFrame(w, body)
}

// copyBelow is the body size below which WriteFrame copies the body behind
// its length prefix and writes both at once; a larger body is written
// after its prefix as it is, without a copy of it.
const copyBelow = 64 << 10

// WriteFrame writes body, which must already be canonical CBOR, as one frame.
func WriteFrame(w io.Writer, body []byte) error {
	if len(body) == 0 {
		return ErrFrameEmpty
	}
	if len(body) >= copyBelow {
		var prefix [binary.MaxVarintLen64]byte
		if _, err := w.Write(binary.AppendUvarint(prefix[:0], uint64(len(body)))); err != nil {
			return err
		}
		_, err := w.Write(body)
		return err
	}
	buf := make([]byte, 0, binary.MaxVarintLen64+len(body))
	buf = binary.AppendUvarint(buf, uint64(len(body)))
	buf = append(buf, body...)
	_, err := w.Write(buf)
	return err
}

// ReadFrame reads one frame of at most max body bytes. io.EOF is returned
// only when the stream ends cleanly before the first byte.
func ReadFrame(r io.Reader, max int) ([]byte, error) {
	return readFrameInto(r, max, nil)
}

// readFrameInto is ReadFrame reading the body into buf when it fits.
func readFrameInto(r io.Reader, max int, buf []byte) ([]byte, error) {
	n, err := readLength(r)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, ErrFrameEmpty
	}
	if n > uint64(max) {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, max)
	}
	var body []byte
	if uint64(cap(buf)) >= n {
		body = buf[:n]
	} else {
		body = make([]byte, n)
	}
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("protocol: read frame body: %w", noEOF(err))
	}
	return body, nil
}

// frameBufs holds the bodies of frames ReadMsg decoded, for the next
// frames to be read into: decoding copies what it keeps (byte strings,
// strings, hashes), so a body is free once decoded. Bodies over
// maxPooledFrame are not kept.
var frameBufs = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledFrame bounds the frame bodies frameBufs keeps.
const maxPooledFrame = 4 << 20

// ReadMsg reads one frame of at most max bytes and decodes it strictly into
// v. Nothing decoded into v refers to the frame's bytes.
func ReadMsg(r io.Reader, max int, v any) error {
	bp := frameBufs.Get().(*[]byte)
	body, err := readFrameInto(r, max, *bp)
	if err == nil {
		err = chain.Decode(body, max, v)
	}
	if cap(body) <= maxPooledFrame && cap(body) > cap(*bp) {
		*bp = body[:0]
	}
	frameBufs.Put(bp)
	return err
}

func readLength(r io.Reader) (uint64, error) {
	var b [1]byte
	var x uint64
	for i := range maxUvarintLen {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			if i == 0 && errors.Is(err, io.EOF) {
				return 0, io.EOF
			}
			return 0, fmt.Errorf("protocol: read frame length: %w", noEOF(err))
		}
		x |= uint64(b[0]&0x7f) << (7 * i)
		if b[0] < 0x80 {
			if b[0] == 0 && i > 0 {
				return 0, fmt.Errorf("%w: redundant continuation bytes", ErrFrameLength)
			}
			return x, nil
		}
	}
	return 0, fmt.Errorf("%w: longer than %d bytes", ErrFrameLength, maxUvarintLen)
}

// noEOF turns a clean EOF in the middle of a frame into ErrUnexpectedEOF.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
