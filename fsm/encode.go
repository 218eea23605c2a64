package fsm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
)

// decoders maps every known command type to the function that decodes its
// JSON payload into the concrete command value.
var decoders = map[CommandType]func([]byte) (Command, error){
	CmdNodeUpsert:         decodeAs[NodeUpsert],
	CmdLeaseRenew:         decodeAs[LeaseRenew],
	CmdLeaseExpire:        decodeAs[LeaseExpire],
	CmdNodeState:          decodeAs[NodeStateChange],
	CmdNodeRemove:         decodeAs[NodeRemove],
	CmdWorkloadSubmit:     decodeAs[WorkloadSubmit],
	CmdWorkloadGrant:      decodeAs[WorkloadGrant],
	CmdWorkloadReport:     decodeAs[WorkloadReport],
	CmdWorkloadRemove:     decodeAs[WorkloadRemove],
	CmdWorkloadSetStandby: decodeAs[WorkloadSetStandbys],
	CmdWorkloadPreempt:    decodeAs[WorkloadPreempt],
	CmdCheckpointPrepare:  decodeAs[CheckpointPrepare],
	CmdCheckpointCommit:   decodeAs[CheckpointCommit],
	CmdCheckpointAbort:    decodeAs[CheckpointAbort],
	CmdMigrationBegin:     decodeAs[MigrationBegin],
	CmdMigrationPhase:     decodeAs[MigrationPhase],
	CmdResultAppend:       decodeAs[ResultAppend],
	CmdHazardRecord:       decodeAs[HazardRecord],
}

// decodeAs decodes a JSON object payload into a T, ignoring unknown fields
// so that newer proposers can add fields.
func decodeAs[T Command](payload []byte) (Command, error) {
	var c T
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, err
	}
	return c, nil
}

// Encode returns the wire form of c: one type byte, then the JSON payload.
// c may be a command value or a non-nil pointer to one.
func Encode(c Command) ([]byte, error) {
	return encode(c, 0)
}

// EncodeIgnorable is Encode with IgnoreUnknownFlag set on the type byte:
// replicas that do not know the type skip the command instead of failing.
// Use it only for commands whose loss on an old replica is harmless.
func EncodeIgnorable(c Command) ([]byte, error) {
	return encode(c, IgnoreUnknownFlag)
}

func encode(c Command, flag CommandType) ([]byte, error) {
	if c == nil {
		return nil, fmt.Errorf("%w: encode: nil command", ErrInvalid)
	}
	if v := reflect.ValueOf(c); v.Kind() == reflect.Pointer && v.IsNil() {
		return nil, fmt.Errorf("%w: encode: nil %T", ErrInvalid, c)
	}
	t := c.Type()
	if _, ok := decoders[t]; !ok {
		return nil, fmt.Errorf("%w: encode: type %d (%T)", ErrUnknownCommand, t, c)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("fsm: encode %T: %w", c, err)
	}
	return append([]byte{byte(t | flag)}, payload...), nil
}

// Decode parses an encoded command and returns the concrete command value
// (for example NodeUpsert, never *NodeUpsert). IgnoreUnknownFlag is
// ignored for known types. An unknown type gives an error wrapping
// ErrUnknownCommand (see Ignorable); an empty input, a payload that is not
// one JSON object, or trailing data gives an error wrapping ErrMalformed.
func Decode(b []byte) (Command, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty command", ErrMalformed)
	}
	t := CommandType(b[0]) &^ IgnoreUnknownFlag
	dec, ok := decoders[t]
	if !ok {
		return nil, fmt.Errorf("%w: type %d", ErrUnknownCommand, t)
	}
	payload := b[1:]
	if p := bytes.TrimLeft(payload, " \t\r\n"); len(p) == 0 || p[0] != '{' {
		return nil, fmt.Errorf("%w: type %d: payload is not a JSON object", ErrMalformed, t)
	}
	c, err := dec(payload)
	if err != nil {
		return nil, fmt.Errorf("%w: type %d: %v", ErrMalformed, t, err)
	}
	return c, nil
}

// Ignorable reports whether an encoded command has IgnoreUnknownFlag set,
// that is whether a replica that does not know its type may skip it.
func Ignorable(b []byte) bool {
	return len(b) > 0 && CommandType(b[0])&IgnoreUnknownFlag != 0
}
