package transfer

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/bits"
	"unicode/utf8"
)

// The transfer protocol moves one sealed checkpoint from a client (the
// node that holds it) to a server (a node that should). It runs over any
// bidirectional streams: QUIC streams of one or more connections, or TCP
// (TLS) connections, one per stream. A session goes:
//
//  1. The client opens a control stream and sends OFFER: the workload,
//     the seq, the manifest's digest and the manifest itself.
//  2. The server checks the offer (the manifest parses, is canonical and
//     hashes to the digest; its policy accepts it), answers DONE at once
//     if it holds the checkpoint sealed already, else fills what it can
//     locally (chunks of its earlier checkpoints of the workload, chunks
//     of zeros, what an interrupted attempt left) and answers NEED: a
//     transfer id and the chunks it still lacks.
//  3. The client opens data streams (on extra connections too, if it
//     likes); each sends HELLO with the transfer id, then CHUNK frames,
//     and ends the stream. The server checks each chunk's SHA-256
//     against the manifest before writing it.
//  4. With every chunk in, the server fsyncs, writes the manifest and
//     renames the checkpoint into its store, then answers DONE. Any
//     failure is an ERROR frame instead (or a QUIC connection closed
//     with the same code).
//
// Payloads of the transfer protocol's frames. Integers are big endian;
// digests and hashes travel as 32 raw bytes and are lowercase hex in Go.
// Every decoder is strict: a payload it accepts encodes back to the same
// bytes, and anything else is an error wrapping ErrProtocol.
//
//	OFFER  u16 len, workload | u64 seq | [32] manifest digest | manifest (the rest: its canonical JSON)
//	NEED   [16] transfer id | u32 chunks | u32 local | u32 resumed | bitmap of chunks needed, (chunks+7)/8 bytes
//	HELLO  [16] transfer id
//	CHUNK  u32 global chunk index | the chunk's bytes (the rest)
//	DONE   [32] manifest digest
//	ERROR  u16 code | message (the rest, UTF-8)
//
// A global chunk index counts the chunks of every file of the manifest in
// its order: the chunks of Files[0] first, then those of Files[1], and so
// on. In NEED's bitmap, bit i (byte i/8, bit i%8 from the least
// significant) is set when the server needs chunk i; bits past the last
// chunk are zero.

const (
	transferIDSize = 16
	helloSize      = transferIDSize
	needHeaderSize = transferIDSize + 12
)

// transferID names one transfer session, so that data streams (and extra
// connections) join the session their control stream opened.
type transferID [transferIDSize]byte

func (id transferID) String() string { return hex.EncodeToString(id[:]) }

// offer is OFFER: a sealed checkpoint the client sends.
type offer struct {
	workload string
	seq      uint64
	digest   string // hex SHA-256 of manifest
	manifest []byte // canonical JSON; aliases the decoded payload
}

func (o *offer) append(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(o.workload)))
	dst = append(dst, o.workload...)
	dst = binary.BigEndian.AppendUint64(dst, o.seq)
	dst = appendHexDigest(dst, o.digest)
	return append(dst, o.manifest...)
}

func decodeOffer(p []byte) (offer, error) {
	var o offer
	if len(p) < 2 {
		return o, protoErr("OFFER", "%d bytes, too short", len(p))
	}
	n := int(binary.BigEndian.Uint16(p))
	p = p[2:]
	if len(p) < n+8+32+1 {
		return o, protoErr("OFFER", "%d bytes after a workload of %d, too short", len(p), n)
	}
	o.workload = string(p[:n])
	if err := ValidateWorkload(o.workload); err != nil {
		return o, protoErr("OFFER", "%v", err)
	}
	p = p[n:]
	o.seq = binary.BigEndian.Uint64(p)
	o.digest = hex.EncodeToString(p[8:40])
	o.manifest = p[40:]
	if len(o.manifest) > MaxManifestSize {
		return o, protoErr("OFFER", "manifest of %d bytes, more than %d", len(o.manifest), MaxManifestSize)
	}
	return o, nil
}

// need is NEED: the session's id and the chunks the server lacks.
type need struct {
	id transferID
	// chunks counts the chunks of the manifest; local those the server
	// found in its own earlier checkpoints (or all zero), resumed those
	// it found in what an interrupted transfer left.
	chunks, local, resumed uint32
	// needed lists the global indices of the chunks to send, ascending.
	needed []uint32
}

func (m *need) append(dst []byte) []byte {
	dst = append(dst, m.id[:]...)
	dst = binary.BigEndian.AppendUint32(dst, m.chunks)
	dst = binary.BigEndian.AppendUint32(dst, m.local)
	dst = binary.BigEndian.AppendUint32(dst, m.resumed)
	start := len(dst)
	dst = append(dst, make([]byte, (int(m.chunks)+7)/8)...)
	for _, i := range m.needed {
		dst[start+int(i/8)] |= 1 << (i % 8)
	}
	return dst
}

func decodeNeed(p []byte) (need, error) {
	var m need
	if len(p) < needHeaderSize {
		return m, protoErr("NEED", "%d bytes, too short", len(p))
	}
	copy(m.id[:], p)
	m.chunks = binary.BigEndian.Uint32(p[16:])
	m.local = binary.BigEndian.Uint32(p[20:])
	m.resumed = binary.BigEndian.Uint32(p[24:])
	bitmap := p[needHeaderSize:]
	if m.chunks > MaxChunks {
		return m, protoErr("NEED", "%d chunks, more than %d", m.chunks, MaxChunks)
	}
	if want := (int(m.chunks) + 7) / 8; len(bitmap) != want {
		return m, protoErr("NEED", "bitmap of %d bytes for %d chunks, want %d", len(bitmap), m.chunks, want)
	}
	if r := m.chunks % 8; r != 0 && bitmap[len(bitmap)-1]>>r != 0 {
		return m, protoErr("NEED", "bits set past chunk %d", m.chunks)
	}
	count := 0
	for _, b := range bitmap {
		count += bits.OnesCount8(b)
	}
	if uint64(m.local)+uint64(m.resumed)+uint64(count) > uint64(m.chunks) {
		return m, protoErr("NEED", "%d local + %d resumed + %d needed chunks, more than the %d there are", m.local, m.resumed, count, m.chunks)
	}
	m.needed = make([]uint32, 0, count)
	for i, b := range bitmap {
		for ; b != 0; b &= b - 1 {
			m.needed = append(m.needed, uint32(i*8+bits.TrailingZeros8(b)))
		}
	}
	return m, nil
}

func decodeHello(p []byte) (transferID, error) {
	var id transferID
	if len(p) != helloSize {
		return id, protoErr("HELLO", "%d bytes, want %d", len(p), helloSize)
	}
	copy(id[:], p)
	return id, nil
}

// appendChunkHeader appends CHUNK's index; the chunk's bytes follow.
func appendChunkHeader(dst []byte, index uint32) []byte {
	return binary.BigEndian.AppendUint32(dst, index)
}

// decodeChunk returns CHUNK's index and bytes (aliasing p).
func decodeChunk(p []byte) (uint32, []byte, error) {
	if len(p) < 5 {
		return 0, nil, protoErr("CHUNK", "%d bytes, too short", len(p))
	}
	if len(p)-4 > MaxChunkData {
		return 0, nil, protoErr("CHUNK", "%d bytes of data, more than %d", len(p)-4, MaxChunkData)
	}
	return binary.BigEndian.Uint32(p), p[4:], nil
}

func appendDone(dst []byte, digest string) []byte { return appendHexDigest(dst, digest) }

func decodeDone(p []byte) (string, error) {
	if len(p) != 32 {
		return "", protoErr("DONE", "%d bytes, want 32", len(p))
	}
	return hex.EncodeToString(p), nil
}

// errorMsg is ERROR: why the server refused or failed the transfer.
type errorMsg struct {
	code    errorCode
	message string
}

func (e *errorMsg) append(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(e.code))
	return append(dst, e.message...)
}

func decodeError(p []byte) (errorMsg, error) {
	var e errorMsg
	if len(p) < 2 {
		return e, protoErr("ERROR", "%d bytes, too short", len(p))
	}
	e.code = errorCode(binary.BigEndian.Uint16(p))
	msg := p[2:]
	switch {
	case e.code == 0:
		return e, protoErr("ERROR", "code 0")
	case len(msg) > maxErrorMessage:
		return e, protoErr("ERROR", "message of %d bytes, more than %d", len(msg), maxErrorMessage)
	case !utf8.Valid(msg):
		return e, protoErr("ERROR", "message is not UTF-8")
	}
	e.message = string(msg)
	return e, nil
}

// appendHexDigest appends the 32 bytes of a hex SHA-256; the caller
// passes a valid one (a manifest's digest).
func appendHexDigest(dst []byte, digest string) []byte {
	var b [32]byte
	hex.Decode(b[:], []byte(digest))
	return append(dst, b[:]...)
}

// protoErr builds a decoding error about a message.
func protoErr(msg, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrProtocol, msg, fmt.Sprintf(format, args...))
}
