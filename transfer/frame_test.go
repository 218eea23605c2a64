package transfer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

var testDigest = strings.Repeat("0123456789abcdef", 4)

// sampleMessages is one frame of each type, as written.
func sampleMessages(t testing.TB) map[FrameType][]byte {
	enc, err := sampleManifest().Encode()
	must(t, err)
	o := offer{workload: "counter", seq: 7, digest: digestOf(enc), manifest: enc}
	n := need{id: transferID{1, 2, 3}, chunks: 19, local: 3, resumed: 2, needed: []uint32{0, 7, 8, 18}}
	e := errorMsg{code: codeCorrupt, message: "checkpoint w#1: files/a chunk 3: sha256 mismatch é"}
	return map[FrameType][]byte{
		FrameOffer: o.append(nil),
		FrameNeed:  n.append(nil),
		FrameHello: n.id[:],
		FrameChunk: append(appendChunkHeader(nil, 42), "chunk bytes"...),
		FrameDone:  appendDone(nil, testDigest),
		FrameError: e.append(nil),
	}
}

func TestFrameRoundTrip(t *testing.T) {
	var stream bytes.Buffer
	msgs := sampleMessages(t)
	order := []FrameType{FrameOffer, FrameNeed, FrameHello, FrameChunk, FrameDone, FrameError}
	for _, ft := range order {
		must(t, WriteFrame(&stream, ft, msgs[ft]))
	}
	buf := make([]byte, 16)
	for _, ft := range order {
		got, p, err := ReadFrame(&stream, buf)
		if err != nil || got != ft || !bytes.Equal(p, msgs[ft]) {
			t.Fatalf("read %v %q %v, want %v", got, p, err, ft)
		}
		if reencode(t, ft, p) == nil {
			t.Fatalf("%v does not decode", ft)
		}
	}
	if _, _, err := ReadFrame(&stream, buf); err != io.EOF {
		t.Errorf("at the end: %v, want io.EOF", err)
	}
}

func TestMessagesDecode(t *testing.T) {
	msgs := sampleMessages(t)
	o, err := decodeOffer(msgs[FrameOffer])
	must(t, err)
	if o.workload != "counter" || o.seq != 7 || digestOf(o.manifest) != o.digest {
		t.Errorf("offer %+v", o)
	}
	n, err := decodeNeed(msgs[FrameNeed])
	must(t, err)
	want := need{id: transferID{1, 2, 3}, chunks: 19, local: 3, resumed: 2, needed: []uint32{0, 7, 8, 18}}
	if !reflect.DeepEqual(n, want) {
		t.Errorf("need %+v, want %+v", n, want)
	}
	g, data, err := decodeChunk(msgs[FrameChunk])
	if err != nil || g != 42 || string(data) != "chunk bytes" {
		t.Errorf("chunk %d %q %v", g, data, err)
	}
	d, err := decodeDone(msgs[FrameDone])
	if err != nil || d != testDigest {
		t.Errorf("done %q %v", d, err)
	}
	e, err := decodeError(msgs[FrameError])
	if err != nil || e.code != codeCorrupt || !strings.Contains(e.message, "chunk 3") {
		t.Errorf("error %+v %v", e, err)
	}
}

// frameBytes is a raw frame: type, the length given, payload.
func frameBytes(ft FrameType, length uint32, payload []byte) []byte {
	b := []byte{byte(ft)}
	b = binary.BigEndian.AppendUint32(b, length)
	return append(b, payload...)
}

func TestReadFrameRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"unknown type", frameBytes(0x08, 0, nil), ErrProtocol},
		{"type zero", frameBytes(0, 0, nil), ErrProtocol},
		{"oversized chunk", frameBytes(FrameChunk, 4+MaxChunkData+1, nil), ErrProtocol},
		{"oversized hello", frameBytes(FrameHello, helloSize+1, nil), ErrProtocol},
		{"oversized done", frameBytes(FrameDone, 33, nil), ErrProtocol},
		{"oversized error", frameBytes(FrameError, 2+maxErrorMessage+1, nil), ErrProtocol},
		{"oversized need", frameBytes(FrameNeed, maxNeedPayload+1, nil), ErrProtocol},
		{"oversized offer", frameBytes(FrameOffer, maxOfferPayload+1, nil), ErrProtocol},
		{"oversized ignorable", frameBytes(0x81, maxIgnorablePayload+1, nil), ErrProtocol},
		{"huge length", frameBytes(FrameOffer, 1<<32-1, nil), ErrProtocol},
		{"short header", []byte{1, 0, 0}, io.ErrUnexpectedEOF},
		{"short payload", frameBytes(FrameHello, helloSize, []byte{1, 2}), io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ReadFrame(bytes.NewReader(tc.in), nil)
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
	// An unknown ignorable frame reads; readMessage passes over it.
	in := append(frameBytes(0x9f, 3, []byte("new")), frameBytes(FrameDone, 32, make([]byte, 32))...)
	ft, _, err := readMessage(bytes.NewReader(in))
	if err != nil || ft != FrameDone {
		t.Errorf("readMessage: %v %v, want DONE", ft, err)
	}
	var many []byte
	for range maxSkipped + 1 {
		many = append(many, frameBytes(0x80, 0, nil)...)
	}
	if _, _, err := readMessage(bytes.NewReader(many)); !errors.Is(err, ErrProtocol) {
		t.Errorf("endless unknown frames: %v, want ErrProtocol", err)
	}
	if err := WriteFrame(io.Discard, FrameHello, make([]byte, 17)); !errors.Is(err, ErrProtocol) {
		t.Errorf("WriteFrame of an oversized HELLO: %v", err)
	}
}

func TestDecodersReject(t *testing.T) {
	msgs := sampleMessages(t)
	offerWith := func(workload string, rest []byte) []byte {
		b := binary.BigEndian.AppendUint16(nil, uint16(len(workload)))
		return append(append(b, workload...), rest...)
	}
	tail := append(make([]byte, 40), '{')
	needWith := func(chunks, local, resumed uint32, bitmap ...byte) []byte {
		b := make([]byte, 16)
		b = binary.BigEndian.AppendUint32(b, chunks)
		b = binary.BigEndian.AppendUint32(b, local)
		b = binary.BigEndian.AppendUint32(b, resumed)
		return append(b, bitmap...)
	}
	for _, tc := range []struct {
		name   string
		decode func([]byte) error
		in     []byte
	}{
		{"offer empty", offerErr, nil},
		{"offer no manifest", offerErr, msgs[FrameOffer][:2+7+8+32]},
		{"offer bad workload", offerErr, offerWith(".staging", tail)},
		{"offer workload with slash", offerErr, offerWith("a/b", tail)},
		{"offer workload length past end", offerErr, offerWith("w", nil)[:2]},
		{"offer huge manifest", offerErr, offerWith("w", make([]byte, 40+MaxManifestSize+1))},
		{"need short", needErr, make([]byte, needHeaderSize-1)},
		{"need bitmap too long", needErr, needWith(8, 0, 0, 1, 0)},
		{"need bitmap too short", needErr, needWith(9, 0, 0, 1)},
		{"need bit past the end", needErr, needWith(3, 0, 0, 0b1000)},
		{"need too many chunks", needErr, needWith(MaxChunks+1, 0, 0)},
		{"need counts add up past chunks", needErr, needWith(8, 4, 4, 1)},
		{"need counts overflow", needErr, needWith(8, 1<<32-1, 2, 0)},
		{"hello short", helloErr, make([]byte, 15)},
		{"hello long", helloErr, make([]byte, 17)},
		{"chunk without data", chunkErr, []byte{0, 0, 0, 1}},
		{"chunk too big", chunkErr, make([]byte, 4+MaxChunkData+1)},
		{"done short", doneErr, make([]byte, 31)},
		{"error code 0", errorErr, []byte{0, 0, 'x'}},
		{"error short", errorErr, []byte{1}},
		{"error not UTF-8", errorErr, []byte{0, 1, 0xff}},
		{"error too long", errorErr, append([]byte{0, 1}, make([]byte, maxErrorMessage+1)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.decode(tc.in); !errors.Is(err, ErrProtocol) {
				t.Errorf("err = %v, want ErrProtocol", err)
			}
		})
	}
}

func offerErr(p []byte) error { _, err := decodeOffer(p); return err }
func needErr(p []byte) error  { _, err := decodeNeed(p); return err }
func helloErr(p []byte) error { _, err := decodeHello(p); return err }
func chunkErr(p []byte) error { _, _, err := decodeChunk(p); return err }
func doneErr(p []byte) error  { _, err := decodeDone(p); return err }
func errorErr(p []byte) error { _, err := decodeError(p); return err }

func TestErrorCodes(t *testing.T) {
	for _, s := range []error{ErrRefused, ErrBadManifest, ErrDigestMismatch, ErrCorrupt, ErrExists, ErrProtocol, ErrInterrupted} {
		e := newErrorMsg(wrapf(s))
		re := &remoteError{peer: "b", msg: e}
		if !errors.Is(re, s) || !strings.Contains(re.Error(), "receiver b: ") || !strings.Contains(re.Error(), "what went wrong") {
			t.Errorf("%v: code %d gives %v", s, e.code, re)
		}
	}
	// A corrupt checkpoint stays corrupt; anything unknown is the receiver's.
	if c := codeOf(&CorruptError{Checkpoint: "w#1", Chunk: -1, Problem: "x"}); c != codeCorrupt {
		t.Errorf("CorruptError has code %d", c)
	}
	if c := codeOf(errors.New("disk full")); c != codeInternal || !errors.Is(sentinelOf(c), ErrReceiver) {
		t.Errorf("plain error has code %d", c)
	}
	if !errors.Is(sentinelOf(999), ErrReceiver) {
		t.Error("an unknown code is not ErrReceiver")
	}
	long := newErrorMsg(errors.New(strings.Repeat("é", maxErrorMessage)))
	if len(long.message) > maxErrorMessage || !utf8.ValidString(long.message) {
		t.Errorf("long message: %d bytes, valid %v", len(long.message), utf8.ValidString(long.message))
	}
	if _, err := decodeError(long.append(nil)); err != nil {
		t.Errorf("a cut message does not decode: %v", err)
	}
	bad := newErrorMsg(errors.New("bad \xff byte"))
	if !utf8.ValidString(bad.message) {
		t.Errorf("message %q is not UTF-8", bad.message)
	}
}

func wrapf(s error) error { return errors.Join(errors.New("what went wrong"), s) }
