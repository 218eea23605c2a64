package gossip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// MaxMetaSize is the largest encoded Meta memberlist can carry
// (memberlist.MetaMaxSize).
const MaxMetaSize = 512

// maxStringLen bounds every string field of the encoding.
const maxStringLen = 255

// metaVersion is the encoding version this package writes.
const metaVersion = 1

var (
	// ErrMetaTooLarge is returned by Meta.Encode when the encoding would
	// exceed MaxMetaSize, or one string field exceeds 255 bytes.
	ErrMetaTooLarge = errors.New("gossip: meta too large")
	// ErrInvalidMeta is returned by Meta.Encode for values the encoding
	// cannot represent (negative capacity, unknown checkpoint mode).
	ErrInvalidMeta = errors.New("gossip: invalid meta")
	// ErrBadMeta is returned by DecodeMeta for bytes that are not a Meta.
	ErrBadMeta = errors.New("gossip: bad meta")
)

// Values of Meta.State.
const (
	StateAlive    = "alive"
	StateDoomed   = "doomed"
	StateDraining = "draining"
	StateLeft     = "left"
)

// Values of Meta.Role.
const (
	RoleVoter  = "voter"
	RoleSpare  = "spare"
	RoleMember = "member"
)

// Values of Meta.Lifecycle.
const (
	LifecycleSpot     = "spot"
	LifecycleOnDemand = "on-demand"
)

// Well-known values of Meta.Cloud (others are allowed and cost a few bytes).
const (
	CloudAWS   = "aws"
	CloudGCP   = "gcp"
	CloudAzure = "azure"
	CloudNone  = "none"
)

// Values of Meta.Modes.
const (
	ModeCRIU = "criu"
	ModeApp  = "app"
	ModeNone = "none"
	// ModeLazyPages is a capability beside the modes: the node can
	// restore lazy (post-copy) CRIU checkpoints.
	ModeLazyPages = "lazy-pages"
)

// Meta is the node metadata every peer gossips about itself.
//
// Wire format (version 1), in this order:
//
//	version  byte (1)
//	flags    byte: bit 0 Leader, bit 1 InRaft; other bits reserved
//	state, role, lifecycle, cloud   enum (below)
//	region, zone, instance id, instance type   string
//	addr     byte 0 (empty) | 4 + 4 bytes | 16 + 16 bytes | 0xFF + string
//	raft, transfer, http, ingress port   uvarint
//	memory MiB, CPU millis               uvarint
//	deadline zig-zag varint, unix milliseconds, 0 = none
//	modes    uvarint bitmask: bit 0 criu, bit 1 app, bit 2 none, bit 3 lazy-pages
//	         (given meaning after the others; older decoders ignore it); others reserved
//
// A string is a uvarint length (at most 255) and its bytes. An enum is one
// byte: 0 for "", a code from a frozen table, or 0xFF followed by a string
// for any other value.
//
// Compatibility rule: later versions only append fields after the version 1
// fields, never change or reorder them, never add enum codes (new values
// are written as 0xFF literals), and may give meaning to reserved bits. A
// decoder therefore reads the fields it knows from any version ≥ its own
// and ignores the rest and any reserved bits; for its own version it
// rejects trailing bytes.
type Meta struct {
	Cloud        string // "aws", "gcp", "azure", "none", or another name
	Region       string
	Zone         string
	InstanceID   string
	InstanceType string
	Lifecycle    string // LifecycleSpot, LifecycleOnDemand or ""

	MemoryMiB int64 // memory capacity offered to workloads
	CPUMillis int64 // CPU capacity offered to workloads

	Addr         string // advertise IP of the other listeners
	RaftPort     uint16
	TransferPort uint16
	HTTPPort     uint16
	IngressPort  uint16

	State    string    // StateAlive, StateDoomed, StateDraining, StateLeft
	Deadline time.Time // when a doomed node goes away; zero = none; kept to the millisecond
	Role     string    // RoleVoter, RoleSpare, RoleMember or ""
	Leader   bool      // reports whether the node leads Raft now
	InRaft   bool      // reports whether the node has Raft state (belongs to a formed cluster)
	Modes    []string  // checkpoint modes served: subset of ModeCRIU, ModeApp, ModeNone, and ModeLazyPages
}

// Frozen enum tables: the index is the wire code. Never reorder or extend.
var (
	stateCodes     = []string{"", StateAlive, StateDoomed, StateDraining, StateLeft}
	roleCodes      = []string{"", RoleVoter, RoleSpare, RoleMember}
	lifecycleCodes = []string{"", LifecycleSpot, LifecycleOnDemand}
	cloudCodes     = []string{"", CloudAWS, CloudGCP, CloudAzure, CloudNone}
	modeBits       = []string{ModeCRIU, ModeApp, ModeNone, ModeLazyPages}
)

const (
	literalCode = 0xFF
	flagLeader  = 1 << 0
	flagInRaft  = 1 << 1
	addrNone    = 0
	addrV4      = 4
	addrV6      = 16
)

// Encode returns the compact binary form of m (see Meta for the format).
func (m Meta) Encode() ([]byte, error) {
	e := encoder{buf: make([]byte, 0, 128)}
	e.byte(metaVersion)
	e.byte(m.flags())
	e.enum("state", stateCodes, m.State)
	e.enum("role", roleCodes, m.Role)
	e.enum("lifecycle", lifecycleCodes, m.Lifecycle)
	e.enum("cloud", cloudCodes, m.Cloud)
	e.string("region", m.Region)
	e.string("zone", m.Zone)
	e.string("instance id", m.InstanceID)
	e.string("instance type", m.InstanceType)
	e.addr(m.Addr)
	for _, p := range []uint16{m.RaftPort, m.TransferPort, m.HTTPPort, m.IngressPort} {
		e.uvarint(uint64(p))
	}
	e.capacity("memory", m.MemoryMiB)
	e.capacity("cpu", m.CPUMillis)
	e.varint(deadlineMillis(m.Deadline))
	e.modes(m.Modes)
	if e.err != nil {
		return nil, e.err
	}
	if len(e.buf) > MaxMetaSize {
		return nil, fmt.Errorf("%w: %d bytes, max %d", ErrMetaTooLarge, len(e.buf), MaxMetaSize)
	}
	return e.buf, nil
}

func (m Meta) flags() byte {
	var f byte
	if m.Leader {
		f |= flagLeader
	}
	if m.InRaft {
		f |= flagInRaft
	}
	return f
}

func deadlineMillis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// DecodeMeta parses an encoded Meta. Errors wrap ErrBadMeta and name the
// field and the fault. Newer versions decode to the fields this version
// knows (see Meta).
func DecodeMeta(b []byte) (Meta, error) {
	if len(b) == 0 {
		return Meta{}, fmt.Errorf("%w: empty", ErrBadMeta)
	}
	if len(b) > MaxMetaSize {
		return Meta{}, fmt.Errorf("%w: %d bytes, max %d", ErrBadMeta, len(b), MaxMetaSize)
	}
	d := decoder{b: b}
	if v := d.byte("version"); v < metaVersion {
		return Meta{}, fmt.Errorf("%w: unknown version %d", ErrBadMeta, v)
	}
	m := d.meta()
	if d.err == nil && b[0] == metaVersion && d.off != len(b) {
		d.fail("end", fmt.Sprintf("%d trailing bytes", len(b)-d.off))
	}
	if d.err != nil {
		return Meta{}, d.err
	}
	return m, nil
}

// meta reads the version 1 fields after the version byte.
func (d *decoder) meta() Meta {
	var m Meta
	flags := d.byte("flags")
	m.Leader, m.InRaft = flags&flagLeader != 0, flags&flagInRaft != 0
	m.State = d.enum("state", stateCodes)
	m.Role = d.enum("role", roleCodes)
	m.Lifecycle = d.enum("lifecycle", lifecycleCodes)
	m.Cloud = d.enum("cloud", cloudCodes)
	m.Region = d.string("region")
	m.Zone = d.string("zone")
	m.InstanceID = d.string("instance id")
	m.InstanceType = d.string("instance type")
	m.Addr = d.addr()
	m.RaftPort = d.port("raft port")
	m.TransferPort = d.port("transfer port")
	m.HTTPPort = d.port("http port")
	m.IngressPort = d.port("ingress port")
	m.MemoryMiB = d.capacity("memory")
	m.CPUMillis = d.capacity("cpu")
	m.Deadline = d.deadline()
	m.Modes = d.modes()
	return m
}

// encoder appends fields to buf; the first error sticks and stops it.
type encoder struct {
	buf []byte
	err error
}

func (e *encoder) byte(b byte) { e.buf = append(e.buf, b) }

func (e *encoder) uvarint(v uint64) { e.buf = binary.AppendUvarint(e.buf, v) }

func (e *encoder) varint(v int64) { e.buf = binary.AppendVarint(e.buf, v) }

func (e *encoder) string(field, s string) {
	if len(s) > maxStringLen {
		e.fail(fmt.Errorf("%w: %s is %d bytes, max %d", ErrMetaTooLarge, field, len(s), maxStringLen))
		return
	}
	e.uvarint(uint64(len(s)))
	e.buf = append(e.buf, s...)
}

func (e *encoder) enum(field string, codes []string, s string) {
	for code, v := range codes {
		if v == s {
			e.byte(byte(code))
			return
		}
	}
	e.byte(literalCode)
	e.string(field, s)
}

func (e *encoder) addr(s string) {
	a, err := netip.ParseAddr(s)
	switch {
	case s == "":
		e.byte(addrNone)
	case err != nil || a.Zone() != "" || a.String() != s:
		e.byte(literalCode) // not a canonical IP: keep the text exactly
		e.string("addr", s)
	case a.Is4():
		e.byte(addrV4)
		b := a.As4()
		e.buf = append(e.buf, b[:]...)
	default:
		e.byte(addrV6)
		b := a.As16()
		e.buf = append(e.buf, b[:]...)
	}
}

func (e *encoder) capacity(field string, v int64) {
	if v < 0 {
		e.fail(fmt.Errorf("%w: %s capacity %d is negative", ErrInvalidMeta, field, v))
		return
	}
	e.uvarint(uint64(v))
}

func (e *encoder) modes(modes []string) {
	var mask uint64
	for _, mode := range modes {
		bit := indexOf(modeBits, mode)
		if bit < 0 {
			e.fail(fmt.Errorf("%w: unknown checkpoint mode %q (want %v)", ErrInvalidMeta, mode, modeBits))
			return
		}
		mask |= 1 << bit
	}
	e.uvarint(mask)
}

func (e *encoder) fail(err error) {
	if e.err == nil {
		e.err = err
	}
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// decoder reads fields from b at off; the first error sticks and makes
// every later read return a zero value.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail(field, what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s: %s", ErrBadMeta, field, what)
	}
}

func (d *decoder) take(field string, n int) []byte {
	if d.err != nil {
		return nil
	}
	if n > len(d.b)-d.off {
		d.fail(field, "truncated")
		return nil
	}
	p := d.b[d.off : d.off+n]
	d.off += n
	return p
}

func (d *decoder) byte(field string) byte {
	if p := d.take(field, 1); p != nil {
		return p[0]
	}
	return 0
}

func (d *decoder) uvarint(field string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail(field, "truncated or overlong varint")
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) string(field string) string {
	n := d.uvarint(field)
	if d.err == nil && n > maxStringLen {
		d.fail(field, fmt.Sprintf("string too long (%d bytes, max %d)", n, maxStringLen))
	}
	return string(d.take(field, int(n)))
}

func (d *decoder) enum(field string, codes []string) string {
	code := d.byte(field)
	switch {
	case code == literalCode:
		return d.string(field)
	case int(code) < len(codes):
		return codes[code]
	default:
		d.fail(field, fmt.Sprintf("unknown code %d", code))
		return ""
	}
}

func (d *decoder) addr() string {
	switch kind := d.byte("addr"); kind {
	case addrNone:
		return ""
	case addrV4:
		if p := d.take("addr", 4); p != nil {
			return netip.AddrFrom4([4]byte(p)).String()
		}
	case addrV6:
		if p := d.take("addr", 16); p != nil {
			return netip.AddrFrom16([16]byte(p)).String()
		}
	case literalCode:
		return d.string("addr")
	default:
		d.fail("addr", fmt.Sprintf("unknown kind %d", kind))
	}
	return ""
}

func (d *decoder) port(field string) uint16 {
	v := d.uvarint(field)
	if v > 0xFFFF {
		d.fail(field, fmt.Sprintf("%d out of range", v))
		return 0
	}
	return uint16(v)
}

func (d *decoder) capacity(field string) int64 {
	v := d.uvarint(field)
	if v > 1<<63-1 {
		d.fail(field, fmt.Sprintf("capacity %d out of range", v))
		return 0
	}
	return int64(v)
}

func (d *decoder) deadline() time.Time {
	if d.err != nil {
		return time.Time{}
	}
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.fail("deadline", "truncated or overlong varint")
		return time.Time{}
	}
	d.off += n
	t := time.UnixMilli(v).UTC()
	if v == 0 || t.IsZero() {
		return time.Time{}
	}
	return t
}

func (d *decoder) modes() []string {
	mask := d.uvarint("modes")
	var modes []string
	for bit, mode := range modeBits {
		if mask&(1<<bit) != 0 {
			modes = append(modes, mode)
		}
	}
	return modes
}
