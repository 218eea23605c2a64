package placement

import "testing"

// TestExplain: a pending workload's reason names what no node offers at
// all before what no node has free now, and is empty when it fits.
func TestExplain(t *testing.T) {
	node := func(name string, capMiB, freeMiB, capMillis int64, eligible bool) Node {
		return Node{Name: name, Eligible: eligible, Capacity: Resources{MemoryMiB: capMiB, CPUMillis: capMillis},
			Free: Resources{MemoryMiB: freeMiB, CPUMillis: capMillis}}
	}
	small := node("a", 21<<10, 21<<10, 4000, true)
	big := node("b", 64<<10, 1<<10, 8000, true)
	gone := node("c", 4<<20, 4<<20, 512000, false)
	for _, c := range []struct {
		name  string
		need  Resources
		nodes []Node
		want  string
	}{
		{"fits", Resources{MemoryMiB: 512}, []Node{small, big}, ""},
		{"no nodes", Resources{MemoryMiB: 512}, nil, "no node has joined the cluster yet"},
		{"2 TiB", Resources{MemoryMiB: 2 << 20}, []Node{small, big, gone}, "no node offers 2 TiB of memory (largest: 64 GiB)"},
		{"2^63-1 MiB", Resources{MemoryMiB: 1<<63 - 1}, []Node{small}, "no node offers 8796093022208 TiB of memory (largest: 21 GiB)"},
		{"rounds alike", Resources{MemoryMiB: 21<<10 + 1}, []Node{small}, "no node offers 21505 MiB of memory (largest: 21504 MiB)"},
		{"cores", Resources{CPUMillis: 16500}, []Node{small, big}, "no node offers 16.5 cores of CPU (largest: 8 cores)"},
		{"busy, not too big", Resources{MemoryMiB: 32 << 10}, []Node{small, big},
			"no node can take it now: 2 nodes: 2 lack memory"},
		{"only the big one is gone", Resources{MemoryMiB: 1 << 20}, []Node{small, gone},
			"no node offers 1 TiB of memory (largest: 21 GiB)"},
		{"none eligible", Resources{MemoryMiB: 1 << 20}, []Node{gone},
			"no node can take it now: 1 node: 1 is not eligible (dead, doomed or draining)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Explain(Request{Workload: "w", Need: c.need}, c.nodes); got != c.want {
				t.Fatalf("Explain = %q, want %q", got, c.want)
			}
		})
	}
}

func TestUnits(t *testing.T) {
	for n, want := range map[int64]string{0: "0 MiB", 512: "512 MiB", 1024: "1 GiB", 1536: "1.5 GiB", 21 << 10: "21 GiB", 3 << 19: "1.5 TiB"} {
		if got := MiB(n); got != want {
			t.Errorf("MiB(%d) = %q, want %q", n, got, want)
		}
	}
	for n, want := range map[int64]string{500: "0.5 cores", 1000: "1 core", 8000: "8 cores", 1250: "1.3 cores"} {
		if got := Cores(n); got != want {
			t.Errorf("Cores(%d) = %q, want %q", n, got, want)
		}
	}
}
