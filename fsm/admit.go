package fsm

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Admission bounds: what a new submission must meet on top of Validate.
// They are checked where a spec enters the cluster (Admit, at the API and
// in Node.Submit), not in Apply, so that a log written before a bound
// existed replays to the same state. A spec is kept by every replica, in
// every snapshot, and shown in every listing, so everything in it that a
// caller controls is bounded.
const (
	// MinCheckpointInterval is the shortest checkpoint interval of a
	// criu or app workload: a checkpoint freezes the process and costs a
	// Raft commit, and a nanosecond interval once made 4,000 failed
	// checkpoints a second and cost the leader its leadership.
	MinCheckpointInterval = Duration(time.Second)
	// MaxMemoryMiB (64 TiB) and MaxCPUMillis (1,024 cores) are more than
	// any host offers: a larger request could never be placed. A request
	// within them that no node of the cluster can hold stays pending, and
	// the workload's status says why.
	MaxMemoryMiB = 64 << 20
	MaxCPUMillis = 1024 * 1000
	// MaxSpecBytes bounds a spec as the cluster keeps it (its JSON).
	MaxSpecBytes = 64 << 10
	// MaxArgs and MaxArgBytes bound the command: how many arguments, and
	// each one's length.
	MaxArgs     = 1024
	MaxArgBytes = 16 << 10
	// MaxEnv, MaxEnvName and MaxEnvValue bound the environment: how many
	// variables, a name's length and a value's.
	MaxEnv      = 256
	MaxEnvName  = 256
	MaxEnvValue = 16 << 10
	// MaxPlacementNames and MaxNameBytes bound each placement list
	// (prefer, avoid_zones, clouds) and each name in it (a DNS name's
	// length).
	MaxPlacementNames = 64
	MaxNameBytes      = 253
)

// Admit reports whether a new submission is within the admission bounds,
// naming every field that is not and its bound. It assumes Validate
// passed. No error shows an env value or a command argument: they may be
// secrets, and errors are logged and answered.
func (s WorkloadSpec) Admit() error {
	errs := []error{s.admitCheckpoint(), s.admitResources(), s.admitCommand(), s.admitEnv(),
		admitNames("placement.prefer", s.Placement.Prefer),
		admitNames("placement.avoid_zones", s.Placement.AvoidZones),
		admitNames("placement.clouds", s.Placement.Clouds)}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	b, err := json.Marshal(s)
	if err != nil {
		return invalid("spec", "does not encode: %v", err)
	}
	if len(b) > MaxSpecBytes {
		return invalid("spec", "is %d bytes as JSON, over the limit of %d", len(b), MaxSpecBytes)
	}
	return nil
}

func (s WorkloadSpec) admitCheckpoint() error {
	if s.Checkpoint.Mode != ModeNone && s.Checkpoint.Interval < MinCheckpointInterval {
		return invalid("checkpoint.interval", "%s is below the minimum of %s",
			time.Duration(s.Checkpoint.Interval), time.Duration(MinCheckpointInterval))
	}
	return nil
}

func (s WorkloadSpec) admitResources() error {
	var errs []error
	if s.Resources.MemoryMiB > MaxMemoryMiB {
		errs = append(errs, invalid("resources.memory_mib", "%d is more than any host offers (at most %d)", s.Resources.MemoryMiB, MaxMemoryMiB))
	}
	if s.Resources.CPUMillis > MaxCPUMillis {
		errs = append(errs, invalid("resources.cpu_millis", "%d is more than any host offers (at most %d)", s.Resources.CPUMillis, MaxCPUMillis))
	}
	return errors.Join(errs...)
}

func (s WorkloadSpec) admitCommand() error {
	if len(s.Command) > MaxArgs {
		return invalid("command", "has %d entries, over the limit of %d", len(s.Command), MaxArgs)
	}
	for i, arg := range s.Command {
		field := fmt.Sprintf("command[%d]", i)
		if len(arg) > MaxArgBytes {
			return invalid(field, "is %d bytes, over the limit of %d", len(arg), MaxArgBytes)
		}
		if strings.IndexByte(arg, 0) >= 0 {
			return invalid(field, "contains a NUL byte, which no program can be given")
		}
	}
	return nil
}

func (s WorkloadSpec) admitEnv() error {
	if len(s.Env) > MaxEnv {
		return invalid("env", "has %d variables, over the limit of %d", len(s.Env), MaxEnv)
	}
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		if len(k) > MaxEnvName {
			return invalid("env", "a name is %d bytes, over the limit of %d (it begins %q)", len(k), MaxEnvName, k[:32])
		}
		field := fmt.Sprintf("env[%q]", k)
		if v := s.Env[k]; len(v) > MaxEnvValue {
			return invalid(field, "the value is %d bytes, over the limit of %d", len(v), MaxEnvValue)
		} else if strings.IndexByte(v, 0) >= 0 {
			return invalid(field, "the value contains a NUL byte, which no program can be given")
		}
	}
	return nil
}

func admitNames(field string, names []string) error {
	if len(names) > MaxPlacementNames {
		return invalid(field, "has %d names, over the limit of %d", len(names), MaxPlacementNames)
	}
	for i, n := range names {
		if len(n) > MaxNameBytes {
			return invalid(fmt.Sprintf("%s[%d]", field, i), "is %d bytes, over the limit of %d", len(n), MaxNameBytes)
		}
	}
	return nil
}
