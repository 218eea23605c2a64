package transfer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// reencode decodes the payload p of a frame of type ft and encodes it
// again; it returns nil when p does not decode (or ft is not a known
// type). Every decoder is canonical: what decodes encodes to p.
func reencode(t testing.TB, ft FrameType, p []byte) []byte {
	var out []byte
	switch ft {
	case FrameOffer:
		o, err := decodeOffer(p)
		if err != nil {
			return nil
		}
		out = o.append(nil)
	case FrameNeed:
		n, err := decodeNeed(p)
		if err != nil {
			return nil
		}
		out = n.append(nil)
	case FrameHello:
		id, err := decodeHello(p)
		if err != nil {
			return nil
		}
		out = id[:]
	case FrameChunk:
		g, data, err := decodeChunk(p)
		if err != nil {
			return nil
		}
		out = append(appendChunkHeader(nil, g), data...)
	case FrameDone:
		d, err := decodeDone(p)
		if err != nil {
			return nil
		}
		out = appendDone(nil, d)
	case FrameError:
		e, err := decodeError(p)
		if err != nil {
			return nil
		}
		out = e.append(nil)
	case FramePages:
		m, err := decodePages(p)
		if err != nil {
			return nil
		}
		out = m.append(nil)
	default:
		return nil
	}
	if !bytes.Equal(out, p) {
		t.Fatalf("%v decodes, then encodes differently:\n%x\n%x", ft, p, out)
	}
	return out
}

// frameSeeds are whole frames: one of each message, and edge cases.
func frameSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for ft, p := range sampleMessages(t) {
		seeds = append(seeds, frameBytes(ft, uint32(len(p)), p))
	}
	n := need{chunks: 9, needed: []uint32{8}}
	pg := pages{workload: "counter", seq: 7}
	seeds = append(seeds,
		frameBytes(FramePages, uint32(len(pg.append(nil))), pg.append(nil)),
		frameBytes(FramePages, 0, nil), // the server's ack
		frameBytes(FrameNeed, needHeaderSize+2, n.append(nil)),
		frameBytes(0x80|0x11, 2, []byte("xy")),
		frameBytes(FrameChunk, 5, []byte{0, 0, 0, 0, 9}),
		frameBytes(FrameError, 2, []byte{0, 7}),
		frameBytes(FrameHello, 3, []byte{1, 2, 3}),
		[]byte{byte(FrameDone), 0xff, 0xff, 0xff, 0xff},
		nil,
	)
	return seeds
}

// FuzzDecodeFrame reads frames from arbitrary bytes: ReadFrame never
// panics nor reads past a frame's length, and a frame that decodes
// encodes back to the bytes read.
func FuzzDecodeFrame(f *testing.F) {
	for _, s := range frameSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		for range 8 {
			before := r.Len()
			ft, p, err := ReadFrame(r, make([]byte, 0, 64))
			if err != nil {
				if err != io.EOF && !errors.Is(err, ErrProtocol) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if used := before - r.Len(); used != FrameHeaderSize+len(p) {
				t.Fatalf("read %d bytes for a payload of %d", used, len(p))
			}
			if len(p) > ft.maxPayload() {
				t.Fatalf("%v payload of %d bytes, over %d", ft, len(p), ft.maxPayload())
			}
			if out := reencode(t, ft, p); out != nil {
				var b bytes.Buffer
				must(t, WriteFrame(&b, ft, out))
				if !bytes.Equal(b.Bytes(), in[len(in)-before:len(in)-r.Len()]) {
					t.Fatalf("%v frame does not write back as read", ft)
				}
			}
		}
	})
}

// fuzzPayload fuzzes the decoder of one message type with seeds.
func fuzzPayload(f *testing.F, ft FrameType, seeds ...[]byte) {
	f.Add(sampleMessages(f)[ft])
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p []byte) { reencode(t, ft, p) })
}

func FuzzDecodeOffer(f *testing.F) {
	short := binary.BigEndian.AppendUint16(nil, 1)
	fuzzPayload(f, FrameOffer, short, append(append(short, 'w'), make([]byte, 41)...), append(binary.BigEndian.AppendUint16(nil, 300), 'x'))
}

func FuzzDecodeNeed(f *testing.F) {
	all := need{chunks: 17, needed: []uint32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}}
	none := need{chunks: 0}
	fuzzPayload(f, FrameNeed, all.append(nil), none.append(nil), make([]byte, needHeaderSize+1))
}

func FuzzDecodeHello(f *testing.F) {
	fuzzPayload(f, FrameHello, make([]byte, 15), make([]byte, 17))
}

func FuzzDecodeChunk(f *testing.F) {
	fuzzPayload(f, FrameChunk, []byte{0, 0, 0, 1}, []byte{0xff, 0xff, 0xff, 0xff, 0})
}

func FuzzDecodeDone(f *testing.F) {
	fuzzPayload(f, FrameDone, make([]byte, 31), make([]byte, 33))
}

func FuzzDecodeError(f *testing.F) {
	fuzzPayload(f, FrameError, []byte{0, 0}, []byte{0, 1, 0xc3}, []byte{0xff, 0xff, 'x'})
}

func FuzzDecodePages(f *testing.F) {
	pg := pages{workload: "counter", seq: 7}
	long := pages{workload: string(bytes.Repeat([]byte{'w'}, maxNameLen)), seq: 1<<64 - 1}
	fuzzPayload(f, FramePages, pg.append(nil), long.append(nil), append(pg.append(nil), 0),
		append(binary.BigEndian.AppendUint16(nil, 2), "..\x00\x00\x00\x00\x00\x00\x00\x01"...))
}
