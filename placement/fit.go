package placement

import (
	"errors"
	"fmt"
)

// The reasons a node cannot take a request, one per hard constraint; an
// *Unfit from Fits wraps exactly one of them.
var (
	ErrExcluded   = errors.New("excluded")
	ErrIneligible = errors.New("not eligible (dead, doomed or draining)")
	ErrAvoidZone  = errors.New("in an avoided zone")
	ErrCloud      = errors.New("outside the allowed clouds")
	ErrMode       = errors.New("checkpoint mode not offered")
	ErrMemory     = errors.New("not enough memory")
	ErrCPU        = errors.New("not enough CPU")
)

// Unfit says why a node cannot take a request: the first hard constraint
// it fails, in ChooseHolder's checking order, with what the node has and
// what the request needs so that a caller can say it in its own words.
type Unfit struct {
	Node string
	// Reason is one of the Err* sentinels above; Unwrap returns it.
	Reason error
	// Mode is the requested checkpoint mode and Modes what the node offers.
	Mode  string
	Modes []string
	// Need is the request's, Free the node's.
	Need, Free Resources
}

func (u *Unfit) Error() string {
	switch u.Reason {
	case ErrMode:
		return fmt.Sprintf("node %s cannot run checkpoint mode %s (it offers %v)", u.Node, u.Mode, u.Modes)
	case ErrMemory, ErrCPU:
		return fmt.Sprintf("node %s has %d MiB and %d millicores free, the request needs %d MiB and %d millicores",
			u.Node, u.Free.MemoryMiB, u.Free.CPUMillis, u.Need.MemoryMiB, u.Need.CPUMillis)
	}
	return fmt.Sprintf("node %s is %v", u.Node, u.Reason)
}

// Unwrap returns the reason, for errors.Is.
func (u *Unfit) Unwrap() error { return u.Reason }

// reasons maps each refusal to its sentinel.
var reasons = [refusalCount]error{
	refusedExcluded: ErrExcluded, refusedIneligible: ErrIneligible, refusedZone: ErrAvoidZone,
	refusedCloud: ErrCloud, refusedMode: ErrMode, refusedMemory: ErrMemory, refusedCPU: ErrCPU,
}

// Fits returns nil when nd meets every hard constraint of req (the same
// check ChooseHolder makes of each node), else an *Unfit naming the
// first it fails.
func Fits(req Request, nd Node) error {
	r := check(req, nd)
	if r == accepted {
		return nil
	}
	return &Unfit{Node: nd.Name, Reason: reasons[r], Mode: req.Mode, Modes: nd.Modes, Need: req.Need, Free: nd.Free}
}
