package peer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/lifeboat/lifeboat/node/api"
)

// request is what every request type does: say what is wrong with it.
type request interface {
	Validate() error
}

// DecodeApply reads an ApplyRequest of at most 64 bytes more than the
// base64 of MaxCommand.
func DecodeApply(r io.Reader) (ApplyRequest, error) {
	return decode[ApplyRequest](r, "apply", limitApply)
}

// DecodeLease reads a LeaseRequest of at most 1 KiB.
func DecodeLease(r io.Reader) (LeaseRequest, error) {
	return decode[LeaseRequest](r, "lease", limitSmall)
}

// DecodeMirror reads a MirrorRequest of at most 1 KiB.
func DecodeMirror(r io.Reader) (MirrorRequest, error) {
	return decode[MirrorRequest](r, "mirror", limitSmall)
}

// DecodeCheckpoint reads a CheckpointRequest of at most 1 KiB.
func DecodeCheckpoint(r io.Reader) (CheckpointRequest, error) {
	return decode[CheckpointRequest](r, "checkpoint", limitSmall)
}

// DecodeRestart reads a RestartRequest of at most 1 KiB.
func DecodeRestart(r io.Reader) (RestartRequest, error) {
	return decode[RestartRequest](r, "restart", limitSmall)
}

// DecodeMigrate reads a MigrateRequest of at most 4 KiB; an empty reason
// becomes "manual".
func DecodeMigrate(r io.Reader) (MigrateRequest, error) {
	req, err := decode[MigrateRequest](r, "migrate", limitMove)
	if err == nil && req.Reason == "" {
		req.Reason = "manual"
	}
	return req, err
}

// DecodeSend reads a SendRequest of at most 2 KiB.
func DecodeSend(r io.Reader) (SendRequest, error) {
	return decode[SendRequest](r, "send", limitSend)
}

// DecodeResults reads a ResultsRequest of at most 1 KiB.
func DecodeResults(r io.Reader) (ResultsRequest, error) {
	return decode[ResultsRequest](r, "results", limitSmall)
}

// DecodeHello reads a HelloRequest of at most 1 KiB.
func DecodeHello(r io.Reader) (HelloRequest, error) {
	return decode[HelloRequest](r, "hello", limitSmall)
}

// DecodeClock reads a ClockRequest of at most 1 KiB.
func DecodeClock(r io.Reader) (ClockRequest, error) {
	return decode[ClockRequest](r, "clock", limitSmall)
}

// decode reads one JSON object of at most limit bytes into a T, strictly:
// no unknown fields, nothing after the object, every field valid. On an
// error it returns the zero T.
func decode[T request](r io.Reader, endpoint string, limit int64) (T, error) {
	var req, zero T
	if err := decodeInto(r, endpoint, limit, &req); err != nil {
		return zero, err
	}
	if err := req.Validate(); err != nil {
		return zero, err
	}
	return req, nil
}

func decodeInto(r io.Reader, endpoint string, limit int64, v any) error {
	body, err := io.ReadAll(io.LimitReader(r, limit+1))
	switch {
	case err != nil: // %w: a body that timed out is answered 408
		return fmt.Errorf("%w: peer %s request: body could not be read: %w", api.ErrBadRequest, endpoint, err)
	case int64(len(body)) > limit:
		return fmt.Errorf("%w: peer %s request: body is over the limit of %d bytes", api.ErrTooLarge, endpoint, limit)
	}
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return bad(endpoint, "body", "must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bad(endpoint, "body", fmt.Sprintf("does not parse: %v", err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return bad(endpoint, "body", "has data after the JSON object")
	}
	return nil
}

// encode is the JSON of a request as Client sends it: HTML characters
// are not escaped, so a name costs at most twice its length.
func encode(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
