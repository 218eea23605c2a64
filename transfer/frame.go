package transfer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrProtocol means a peer broke the transfer protocol: a malformed or
// oversized frame, a message out of turn, a chunk nobody asked for. The
// wrapping error says which.
var ErrProtocol = errors.New("transfer: protocol violation")

// FrameType is the first byte of a frame: what its payload holds.
//
// Every message of the transfer protocol travels as one frame:
//
//	type    1 byte
//	length  4 bytes, big endian: the payload's size
//	payload length bytes
//
// A type with FrameIgnorable set may be skipped by a reader that does not
// know it, so a later version can add optional messages that older nodes
// pass over; an unknown type without it is a protocol error.
type FrameType byte

// Frame types. The payload layouts are in messages.go.
const (
	FrameOffer FrameType = 0x01 // client → server, control stream: a checkpoint on offer
	FrameNeed  FrameType = 0x02 // server → client, control stream: the chunks to send
	FrameHello FrameType = 0x03 // client → server, first on a data stream: the transfer it joins
	FrameChunk FrameType = 0x04 // client → server, data stream: one chunk
	FrameDone  FrameType = 0x05 // server → client, control stream: sealed
	FrameError FrameType = 0x06 // server → client, any stream: refused or failed
	FramePages FrameType = 0x07 // both ways, a page relay stream: its request, then the server's ack (pages.go)

	// FrameIgnorable marks a frame type that a reader which does not know
	// it skips.
	FrameIgnorable FrameType = 0x80
)

// Frame size limits.
const (
	// FrameHeaderSize is the size of a frame's type and length.
	FrameHeaderSize = 5
	// MaxChunkData bounds a CHUNK frame's data: the transfer protocol
	// carries checkpoints whose manifest's chunk size is at most this
	// (the store seals with DefaultChunkSize).
	MaxChunkData = DefaultChunkSize
	// maxOfferPayload bounds an OFFER: workload, seq, digest, manifest.
	maxOfferPayload = 2 + maxNameLen + 8 + 32 + MaxManifestSize
	// maxNeedPayload bounds a NEED: header and a bitmap of MaxChunks bits.
	maxNeedPayload = needHeaderSize + MaxChunks/8
	// maxPagesPayload bounds a PAGES: workload, seq.
	maxPagesPayload = 2 + maxNameLen + 8
	// maxErrorMessage bounds an ERROR's message, in bytes.
	maxErrorMessage = 4096
	// maxIgnorablePayload bounds the payload of a frame a reader skips.
	maxIgnorablePayload = 64 << 10
	// MaxFramePayload is the largest payload of any frame (an OFFER).
	MaxFramePayload = maxOfferPayload
)

// String names the frame type for errors and logs.
func (t FrameType) String() string {
	switch t {
	case FrameOffer:
		return "OFFER"
	case FrameNeed:
		return "NEED"
	case FrameHello:
		return "HELLO"
	case FrameChunk:
		return "CHUNK"
	case FrameDone:
		return "DONE"
	case FrameError:
		return "ERROR"
	case FramePages:
		return "PAGES"
	}
	return fmt.Sprintf("frame type %#02x", byte(t))
}

// Known reports whether this version of the protocol knows t.
func (t FrameType) Known() bool { return t >= FrameOffer && t <= FramePages }

// maxPayload is the largest payload a frame of type t may carry, or -1
// if t is unknown and not ignorable.
func (t FrameType) maxPayload() int {
	switch t {
	case FrameOffer:
		return maxOfferPayload
	case FrameNeed:
		return maxNeedPayload
	case FrameHello:
		return helloSize
	case FrameChunk:
		return 4 + MaxChunkData
	case FrameDone:
		return 32
	case FrameError:
		return 2 + maxErrorMessage
	case FramePages:
		return maxPagesPayload
	}
	if t&FrameIgnorable != 0 {
		return maxIgnorablePayload
	}
	return -1
}

// ReadFrame reads one frame from r. The payload is read into buf when it
// fits (so a caller can reuse one buffer for every frame of a stream),
// else into a new slice, and is valid until buf is reused. A frame whose
// length is over its type's limit, or of an unknown type without
// FrameIgnorable, is an error wrapping ErrProtocol, and nothing of its
// payload is read. At a clean end of stream, before any byte of a frame,
// ReadFrame returns io.EOF itself; a frame cut short is
// io.ErrUnexpectedEOF.
func ReadFrame(r io.Reader, buf []byte) (FrameType, []byte, error) {
	var hdr [FrameHeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	t := FrameType(hdr[0])
	n := binary.BigEndian.Uint32(hdr[1:])
	limit := t.maxPayload()
	if limit < 0 {
		return 0, nil, fmt.Errorf("%w: unknown %v", ErrProtocol, t)
	}
	if uint64(n) > uint64(limit) {
		return 0, nil, fmt.Errorf("%w: %v of %d bytes, more than %d", ErrProtocol, t, n, limit)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, fmt.Errorf("read %v payload: %w", t, err)
	}
	return t, buf, nil
}

// WriteFrame writes one frame of type t with payload to w. A payload over
// the type's limit is an error wrapping ErrProtocol, and nothing is
// written.
func WriteFrame(w io.Writer, t FrameType, payload []byte) error {
	if limit := t.maxPayload(); limit < 0 || len(payload) > limit {
		return fmt.Errorf("%w: cannot write %v of %d bytes", ErrProtocol, t, len(payload))
	}
	if len(payload) <= 4096 {
		_, err := w.Write(appendFrame(make([]byte, 0, FrameHeaderSize+len(payload)), t, payload))
		return err
	}
	var hdr [FrameHeaderSize]byte
	putFrameHeader(hdr[:], t, len(payload))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

// appendFrame appends a frame to dst.
func appendFrame(dst []byte, t FrameType, payload []byte) []byte {
	dst = append(dst, byte(t))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	return append(dst, payload...)
}

// putFrameHeader writes the header of a frame of type t and a payload of
// n bytes into b[:FrameHeaderSize].
func putFrameHeader(b []byte, t FrameType, n int) {
	b[0] = byte(t)
	binary.BigEndian.PutUint32(b[1:FrameHeaderSize], uint32(n))
}
