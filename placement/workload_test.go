package placement

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// nd builds an eligible node with 1 GiB and 1 CPU free and no load.
func nd(name, cloud, zone string) Node {
	return Node{Name: name, Cloud: cloud, Zone: zone, Eligible: true,
		Free: Resources{MemoryMiB: 1024, CPUMillis: 1000}}
}

// with returns n changed by f.
func with(n Node, f func(*Node)) Node {
	f(&n)
	return n
}

func TestChooseHolderConstraints(t *testing.T) {
	need := Resources{MemoryMiB: 512, CPUMillis: 500}
	base := Request{Workload: "w", Mode: "criu", Need: need}
	tests := []struct {
		name  string
		req   func(Request) Request
		nodes []Node
		want  string // holder, or "" for ErrNoCandidate
		msg   string // substring of the error
	}{{
		name:  "ineligible node refused",
		nodes: []Node{with(nd("n1", "aws", "a"), func(n *Node) { n.Eligible = false })},
		msg:   "1 node: 1 is not eligible",
	}, {
		name:  "mode not supported",
		nodes: []Node{with(nd("n1", "aws", "a"), func(n *Node) { n.Modes = []string{"app", "none"} })},
		msg:   "1 node: 1 lacks mode criu",
	}, {
		name:  "mode supported",
		nodes: []Node{with(nd("n1", "aws", "a"), func(n *Node) { n.Modes = []string{"app", "criu"} })},
		want:  "n1",
	}, {
		name:  "empty Modes supports every mode",
		nodes: []Node{nd("n1", "aws", "a")},
		want:  "n1",
	}, {
		name:  "empty request mode needs nothing",
		req:   func(r Request) Request { r.Mode = ""; return r },
		nodes: []Node{with(nd("n1", "aws", "a"), func(n *Node) { n.Modes = []string{"none"} })},
		want:  "n1",
	}, {
		name:  "not enough memory",
		nodes: []Node{with(nd("n1", "aws", "a"), func(n *Node) { n.Free.MemoryMiB = 511 })},
		msg:   "1 lacks memory",
	}, {
		name:  "not enough CPU",
		nodes: []Node{with(nd("n1", "aws", "a"), func(n *Node) { n.Free.CPUMillis = 499 })},
		msg:   "1 lacks CPU",
	}, {
		name:  "free exactly the need fits",
		nodes: []Node{with(nd("n1", "aws", "a"), func(n *Node) { n.Free = need })},
		want:  "n1",
	}, {
		name:  "avoided zone",
		req:   func(r Request) Request { r.AvoidZones = []string{"a"}; return r },
		nodes: []Node{nd("n1", "aws", "a"), nd("n2", "aws", "b")},
		want:  "n2",
	}, {
		name:  "only avoided zones",
		req:   func(r Request) Request { r.AvoidZones = []string{"a"}; return r },
		nodes: []Node{nd("n1", "aws", "a")},
		msg:   "1 is in an avoided zone",
	}, {
		name:  "cloud not allowed",
		req:   func(r Request) Request { r.Clouds = []string{"gcp", "azure"}; return r },
		nodes: []Node{nd("n1", "aws", "a"), nd("n2", "azure", "x")},
		want:  "n2",
	}, {
		name:  "no allowed cloud",
		req:   func(r Request) Request { r.Clouds = []string{"gcp"}; return r },
		nodes: []Node{nd("n1", "aws", "a"), nd("n2", "aws", "b")},
		msg:   "2 nodes: 2 are outside the allowed clouds",
	}, {
		name:  "excluded",
		req:   func(r Request) Request { r.Exclude = []string{"n1"}; return r },
		nodes: []Node{nd("n1", "aws", "a"), nd("n2", "aws", "b")},
		want:  "n2",
	}, {
		name: "excluded even when preferred",
		req: func(r Request) Request {
			r.Exclude, r.Prefer = []string{"n1"}, []string{"n1"}
			return r
		},
		nodes: []Node{nd("n1", "aws", "a")},
		msg:   "1 node: 1 is excluded",
	}, {
		name:  "no nodes",
		nodes: nil,
		msg:   `workload "w" (mode "criu", 512 MiB, 500m CPU): 0 nodes`,
	}, {
		name: "refusals are summarized, each node under its first failed constraint",
		nodes: []Node{
			with(nd("n1", "aws", "a"), func(n *Node) { n.Modes = []string{"app"}; n.Free.MemoryMiB = 0 }),
			with(nd("n2", "aws", "a"), func(n *Node) { n.Free.MemoryMiB = 100 }),
			with(nd("n3", "aws", "a"), func(n *Node) { n.Free.MemoryMiB = 100 }),
		},
		msg: "3 nodes: 1 lacks mode criu, 2 lack memory",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := base
			if tt.req != nil {
				req = tt.req(base)
			}
			got, err := ChooseHolder(req, tt.nodes)
			if tt.want != "" {
				if err != nil || got != tt.want {
					t.Fatalf("ChooseHolder = %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if !errors.Is(err, ErrNoCandidate) || !strings.Contains(err.Error(), tt.msg) || got != "" {
				t.Fatalf("ChooseHolder = %q, %v; want ErrNoCandidate saying %q", got, err, tt.msg)
			}
		})
	}
}

func TestChooseHolderTieBreaks(t *testing.T) {
	load := func(n Node, l int) Node { return with(n, func(n *Node) { n.Load = l }) }
	mem := func(n Node, m int64) Node { return with(n, func(n *Node) { n.Free.MemoryMiB = m }) }
	tests := []struct {
		name   string
		prefer []string
		nodes  []Node
		want   string
	}{{
		name:   "preferred beats less loaded",
		prefer: []string{"n2"},
		nodes:  []Node{nd("n1", "aws", "a"), load(nd("n2", "aws", "b"), 9)},
		want:   "n2",
	}, {
		name:   "prefer order counts",
		prefer: []string{"n3", "n1"},
		nodes:  []Node{nd("n1", "aws", "a"), nd("n2", "aws", "b"), nd("n3", "aws", "c")},
		want:   "n3",
	}, {
		name:   "next preferred when the first is infeasible",
		prefer: []string{"n3", "n2"},
		nodes:  []Node{nd("n1", "aws", "a"), nd("n2", "aws", "b"), mem(nd("n3", "aws", "c"), 0)},
		want:   "n2",
	}, {
		name:   "unknown preferred names are ignored",
		prefer: []string{"zz"},
		nodes:  []Node{load(nd("n1", "aws", "a"), 1), nd("n2", "aws", "b")},
		want:   "n2",
	}, {
		name:  "least load beats more memory",
		nodes: []Node{mem(load(nd("n1", "aws", "a"), 2), 4096), load(nd("n2", "aws", "b"), 1)},
		want:  "n2",
	}, {
		name:  "most free memory on equal load",
		nodes: []Node{nd("n1", "aws", "a"), mem(nd("n2", "aws", "b"), 2048)},
		want:  "n2",
	}, {
		name:  "name last",
		nodes: []Node{nd("n2", "aws", "b"), nd("n1", "aws", "a")},
		want:  "n1",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := Request{Workload: "w", Mode: "app", Need: Resources{MemoryMiB: 64}, Prefer: tt.prefer}
			for _, nodes := range [][]Node{tt.nodes, reversed(tt.nodes)} {
				if got, err := ChooseHolder(req, nodes); err != nil || got != tt.want {
					t.Fatalf("ChooseHolder = %q, %v; want %q", got, err, tt.want)
				}
			}
		})
	}
}

// reversed returns a reversed copy of nodes, to check order independence.
func reversed(nodes []Node) []Node {
	out := slices.Clone(nodes)
	slices.Reverse(out)
	return out
}

func TestChooseStandbys(t *testing.T) {
	holder := nd("h", "aws", "a")
	tests := []struct {
		name  string
		req   Request
		nodes []Node
		n     int
		want  []string
	}{{
		name:  "other zone over the holder's zone",
		nodes: []Node{holder, nd("a2", "aws", "a"), nd("b1", "aws", "b")},
		n:     1, want: []string{"b1"},
	}, {
		name:  "other cloud over another zone of the holder's cloud",
		nodes: []Node{holder, nd("b1", "aws", "b"), nd("x1", "gcp", "x")},
		n:     1, want: []string{"x1"},
	}, {
		name:  "spread among themselves: zones before clouds",
		nodes: []Node{holder, nd("b1", "aws", "b"), nd("x1", "gcp", "x"), nd("x2", "gcp", "x")},
		n:     2, want: []string{"x1", "b1"},
	}, {
		name: "spread among themselves: a third cloud before a second zone",
		nodes: []Node{holder, nd("b1", "aws", "b"), nd("x1", "gcp", "x"), nd("y1", "gcp", "y"),
			nd("z1", "azure", "z")},
		n: 2, want: []string{"x1", "z1"},
	}, {
		name:  "the holder's zone only when nothing else is left",
		nodes: []Node{holder, nd("a2", "aws", "a"), nd("b1", "aws", "b")},
		n:     3, want: []string{"b1", "a2"},
	}, {
		name:  "AvoidZones makes the holder's zone a hard no",
		req:   Request{AvoidZones: []string{"a"}},
		nodes: []Node{holder, nd("a2", "aws", "a"), nd("b1", "aws", "b")},
		n:     3, want: []string{"b1"},
	}, {
		name: "hard constraints apply",
		req:  Request{Mode: "criu", Need: Resources{MemoryMiB: 512}, Exclude: []string{"c1"}, Clouds: []string{"aws"}},
		nodes: []Node{holder, with(nd("b1", "aws", "b"), func(n *Node) { n.Eligible = false }),
			with(nd("b2", "aws", "b"), func(n *Node) { n.Modes = []string{"app"} }),
			with(nd("b3", "aws", "b"), func(n *Node) { n.Free.MemoryMiB = 10 }),
			nd("c1", "aws", "c"), nd("x1", "gcp", "x"), nd("d1", "aws", "d")},
		n: 5, want: []string{"d1"},
	}, {
		name:  "scores break ties within the same spread",
		req:   Request{Prefer: []string{"c1"}},
		nodes: []Node{holder, nd("b1", "aws", "b"), nd("c1", "aws", "c"), with(nd("b0", "aws", "b"), func(n *Node) { n.Load = 1 })},
		n:     1, want: []string{"c1"},
	}, {
		name:  "never the holder, even when preferred",
		req:   Request{Prefer: []string{"h"}},
		nodes: []Node{holder, nd("b1", "aws", "b")},
		n:     2, want: []string{"b1"},
	}, {
		name:  "an unknown holder imposes no zone preference",
		nodes: []Node{nd("a2", "aws", "a"), nd("b1", "aws", "b")},
		n:     1, want: []string{"a2"},
	}, {
		name:  "n of zero",
		nodes: []Node{holder, nd("b1", "aws", "b")},
		n:     0, want: nil,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, nodes := range [][]Node{tt.nodes, reversed(tt.nodes)} {
				if got := ChooseStandbys(tt.req, "h", nodes, tt.n); !slices.Equal(got, tt.want) {
					t.Fatalf("ChooseStandbys = %v, want %v", got, tt.want)
				}
			}
		})
	}
}
