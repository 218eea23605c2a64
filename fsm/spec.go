package fsm

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Spec limits and defaults.
const (
	// MaxStandbys is the most standbys a workload may ask for.
	MaxStandbys = 5
	// DefaultCheckpointInterval is the checkpoint interval of a spec that
	// sets none.
	DefaultCheckpointInterval = Duration(30 * time.Second)
	// DefaultStandbys is the standby count of a spec that sets none.
	DefaultStandbys = 1
	// ProtocolHTTP and ProtocolTCP are the service protocols.
	ProtocolHTTP = "http"
	ProtocolTCP  = "tcp"
)

// idPattern is what a workload id looks like: it is used in file names,
// URLs and environment variables, so it is kept short and plain.
var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// Validate reports every problem of the spec at once. Each error wraps
// ErrInvalid and names the field as it is spelled in YAML and JSON.
// Validate does not apply defaults: call WithDefaults first.
func (s WorkloadSpec) Validate() error {
	return errors.Join(
		s.validateID(),
		s.validateCommand(),
		s.validateEnv(),
		s.Checkpoint.validate(),
		validatePriority(s.Priority),
		s.Resources.validate("resources"),
		s.Service.validate(),
		validateStandbys(s.Standbys),
	)
}

// invalid returns an error wrapping ErrInvalid that names field.
func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalid, field, fmt.Sprintf(format, args...))
}

func (s WorkloadSpec) validateID() error {
	if s.ID == "" {
		return invalid("id", "must not be empty")
	}
	if !idPattern.MatchString(s.ID) {
		return invalid("id", "%q must be 1-63 characters of a-z, 0-9, '.', '_', '-', starting with a letter or digit", s.ID)
	}
	return nil
}

func (s WorkloadSpec) validateCommand() error {
	if len(s.Command) == 0 || s.Command[0] == "" {
		return invalid("command", "must name the program to run")
	}
	return nil
}

func (s WorkloadSpec) validateEnv() error {
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return invalid("env", "key %q must be non-empty without '=' or NUL", k)
		}
	}
	return nil
}

func (p CheckpointPolicy) validate() error {
	var errs []error
	switch p.Mode {
	case ModeCRIU, ModeApp, ModeNone:
	default:
		errs = append(errs, invalid("checkpoint.mode", "%q must be criu, app or none", p.Mode))
	}
	if p.Interval < 0 {
		errs = append(errs, invalid("checkpoint.interval", "%s must not be negative", time.Duration(p.Interval)))
	}
	if p.LazyPages && p.Mode != ModeCRIU {
		errs = append(errs, invalid("checkpoint.lazy_pages", "needs mode criu, not %q (only CRIU restores before the memory moves)", p.Mode))
	}
	return errors.Join(errs...)
}

func validatePriority(p string) error {
	if PriorityRank(p) == unknownPriorityRank {
		return invalid("priority", "%q must be critical, high, normal or batch", p)
	}
	return nil
}

func (r Resources) validate(field string) error {
	var errs []error
	if r.MemoryMiB < 0 {
		errs = append(errs, invalid(field+".memory_mib", "%d must not be negative", r.MemoryMiB))
	}
	if r.CPUMillis < 0 {
		errs = append(errs, invalid(field+".cpu_millis", "%d must not be negative", r.CPUMillis))
	}
	return errors.Join(errs...)
}

func (s *Service) validate() error {
	if s == nil {
		return nil
	}
	var errs []error
	if s.Port < 1 || s.Port > 65535 {
		errs = append(errs, invalid("service.port", "%d must be 1-65535", s.Port))
	}
	if s.Listen < 0 || s.Listen > 65535 {
		errs = append(errs, invalid("service.listen", "%d must be 0-65535", s.Listen))
	}
	if s.Listen != 0 && s.Listen == s.Port {
		errs = append(errs, invalid("service.listen", "%d is also service.port: on the holder the ingress and the service would both listen on it", s.Listen))
	}
	switch s.Protocol {
	case "", ProtocolHTTP, ProtocolTCP:
	default:
		errs = append(errs, invalid("service.protocol", "%q must be http or tcp", s.Protocol))
	}
	if s.SLO < 0 {
		errs = append(errs, invalid("service.slo", "%s must not be negative", time.Duration(s.SLO)))
	}
	return errors.Join(errs...)
}

func validateStandbys(n int) error {
	if n < 0 || n > MaxStandbys {
		return invalid("standbys", "%d must be 0-%d", n, MaxStandbys)
	}
	return nil
}

// WithDefaults returns a copy of the spec with unset fields defaulted:
// checkpoint mode criu every 30s, priority normal, 1 standby, and for a
// service protocol http listening on the service port. Since 0 means unset,
// a spec cannot ask for 0 standbys or a 0 interval through WithDefaults.
// The result shares Command, Env and Placement with s.
func (s WorkloadSpec) WithDefaults() WorkloadSpec {
	if s.Checkpoint.Mode == "" {
		s.Checkpoint.Mode = ModeCRIU
	}
	if s.Checkpoint.Interval == 0 {
		s.Checkpoint.Interval = DefaultCheckpointInterval
	}
	if s.Priority == "" {
		s.Priority = PriorityNormal
	}
	if s.Standbys == 0 {
		s.Standbys = DefaultStandbys
	}
	if s.Service != nil {
		svc := *s.Service
		if svc.Protocol == "" {
			svc.Protocol = ProtocolHTTP
		}
		s.Service = &svc
	}
	return s
}

// unknownPriorityRank is PriorityRank of anything that is not a priority.
const unknownPriorityRank = 4

// PriorityRank orders priority classes: critical 0, high 1, normal 2,
// batch 3, anything else 4 (after every known class).
func PriorityRank(p string) int {
	switch p {
	case PriorityCritical:
		return 0
	case PriorityHigh:
		return 1
	case PriorityNormal:
		return 2
	case PriorityBatch:
		return 3
	}
	return unknownPriorityRank
}
