package placement

import (
	"errors"
	"testing"
)

// Fits names the first hard constraint a node fails, in ChooseHolder's
// order, with the numbers.
func TestFits(t *testing.T) {
	req := Request{Workload: "w", Mode: "criu", Need: Resources{MemoryMiB: 512, CPUMillis: 500},
		AvoidZones: []string{"bad"}, Clouds: []string{"aws"}, Exclude: []string{"old"}}
	ok := Node{Name: "n", Zone: "a", Cloud: "aws", Eligible: true, Free: Resources{MemoryMiB: 512, CPUMillis: 500}}
	with := func(f func(*Node)) Node { nd := ok; f(&nd); return nd }
	cases := []struct {
		name string
		nd   Node
		want error
		text string
	}{
		{"fits exactly", ok, nil, ""},
		{"every mode when none is listed", with(func(n *Node) { n.Modes = nil }), nil, ""},
		{"excluded", with(func(n *Node) { n.Name = "old"; n.Eligible = false }), ErrExcluded, "node old is excluded"},
		{"not eligible", with(func(n *Node) { n.Eligible = false; n.Zone = "bad" }), ErrIneligible, "node n is not eligible (dead, doomed or draining)"},
		{"avoided zone", with(func(n *Node) { n.Zone = "bad" }), ErrAvoidZone, "node n is in an avoided zone"},
		{"other cloud", with(func(n *Node) { n.Cloud = "gcp" }), ErrCloud, "node n is outside the allowed clouds"},
		{"mode", with(func(n *Node) { n.Modes = []string{"app", "none"}; n.Free.MemoryMiB = 0 }), ErrMode,
			"node n cannot run checkpoint mode criu (it offers [app none])"},
		{"memory", with(func(n *Node) { n.Free.MemoryMiB = 511; n.Free.CPUMillis = 0 }), ErrMemory,
			"node n has 511 MiB and 0 millicores free, the request needs 512 MiB and 500 millicores"},
		{"cpu", with(func(n *Node) { n.Free.CPUMillis = 499 }), ErrCPU,
			"node n has 512 MiB and 499 millicores free, the request needs 512 MiB and 500 millicores"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Fits(req, c.nd)
			if c.want == nil {
				if err != nil {
					t.Fatalf("Fits: %v, want nil", err)
				}
				return
			}
			var u *Unfit
			if !errors.Is(err, c.want) || !errors.As(err, &u) || err.Error() != c.text {
				t.Fatalf("Fits: %v, want %v: %q", err, c.want, c.text)
			}
			if u.Need != req.Need || u.Free != c.nd.Free {
				t.Fatalf("Unfit numbers %+v", u)
			}
			// ChooseHolder refuses the node for the same reason.
			if _, err := ChooseHolder(req, []Node{c.nd}); !errors.Is(err, ErrNoCandidate) {
				t.Fatalf("ChooseHolder took a node Fits refused: %v", err)
			}
		})
	}
}
