package model

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/jepsen/history"
)

const wl = "w1"

// ms is n milliseconds.
func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// incr is an ok incr by client c over [from, to] ms that answered count
// and whose result went in at index.
func incr(id, c, from, to int, count int64, tag string, index uint64) history.Op {
	return history.Op{ID: id, Client: c, Kind: history.KindIncr, Workload: wl, Host: "h1",
		Invoke: ms(from), Complete: ms(to), Outcome: history.Ok, Value: count, Epoch: 1, Index: index, Tag: tag}
}

// lost is an incr of unknown outcome.
func lost(id, c, from, to int, tag string) history.Op {
	return history.Op{ID: id, Client: c, Kind: history.KindIncr, Workload: wl, Host: "h1",
		Invoke: ms(from), Complete: ms(to), Outcome: history.Unknown, Tag: tag}
}

// read is an ok read over [from, to] ms showing values at indices 10, 11, ….
func read(id, c, from, to int, values ...string) history.Op {
	op := history.Op{ID: id, Client: c, Kind: history.KindRead, Workload: wl, Host: "h1",
		Invoke: ms(from), Complete: ms(to), Outcome: history.Ok}
	for i, v := range values {
		op.Log = append(op.Log, history.Entry{Index: uint64(10 + i), Epoch: 1, Value: v})
	}
	return op
}

func TestCheckLinearizable(t *testing.T) {
	for _, tc := range []struct {
		name string
		ops  []history.Op
		ok   bool
	}{
		{"sequential appends then read", []history.Op{
			incr(0, 0, 0, 10, 1, "a", 10), incr(1, 0, 20, 30, 2, "b", 11),
			read(2, 1, 40, 50, "1@a", "2@b"),
		}, true},
		{"concurrent appends in either order", []history.Op{
			incr(0, 0, 0, 30, 2, "a", 11), incr(1, 1, 0, 30, 1, "b", 10),
			read(2, 2, 40, 50, "1@b", "2@a"),
		}, true},
		{"read concurrent with an append may miss it", []history.Op{
			incr(0, 0, 0, 10, 1, "a", 10), incr(1, 0, 20, 60, 2, "b", 11),
			read(2, 1, 30, 40, "1@a"), read(3, 1, 70, 80, "1@a", "2@b"),
		}, true},
		{"read misses an acked append completed before it", []history.Op{
			incr(0, 0, 0, 10, 1, "a", 10), incr(1, 0, 20, 30, 2, "b", 11),
			read(2, 1, 40, 50, "1@a"),
		}, false},
		{"read shows an append never invoked", []history.Op{
			incr(0, 0, 0, 10, 1, "a", 10),
			read(1, 1, 40, 50, "1@a", "2@ghost"),
		}, false},
		{"read shows an append invoked after it", []history.Op{
			read(0, 1, 0, 10, "1@a"), incr(1, 0, 20, 30, 1, "a", 10),
		}, false},
		{"sequential appends in the wrong order", []history.Op{
			incr(0, 0, 0, 10, 1, "a", 10), incr(1, 0, 20, 30, 2, "b", 11),
			read(2, 1, 40, 50, "2@b", "1@a"),
		}, false},
		{"acked count differs from the logged one", []history.Op{
			incr(0, 0, 0, 10, 5, "a", 10), read(1, 1, 40, 50, "6@a"),
		}, false},
		{"acked index differs from the logged one", []history.Op{
			incr(0, 0, 0, 10, 1, "a", 12), read(1, 1, 40, 50, "1@a"),
		}, false},
		{"append shown twice", []history.Op{
			incr(0, 0, 0, 10, 1, "a", 10), read(1, 1, 40, 50, "1@a", "1@a"),
		}, false},
		{"reads go back", []history.Op{
			incr(0, 0, 0, 10, 1, "a", 10), read(1, 1, 20, 30, "1@a"), read(2, 1, 40, 50),
		}, false},
		{"unknown incr that took effect", []history.Op{
			incr(0, 0, 0, 10, 1, "a", 10), lost(1, 0, 20, 30, "b"),
			read(2, 1, 40, 50, "1@a", "2@b"),
		}, true},
		{"unknown incr that did not", []history.Op{
			incr(0, 0, 0, 10, 1, "a", 10), lost(1, 0, 20, 30, "b"),
			read(2, 1, 40, 50, "1@a"),
		}, true},
		{"unknown incr seen late", []history.Op{
			lost(0, 0, 0, 10, "a"), read(1, 1, 20, 30), read(2, 1, 40, 50, "7@a"),
		}, true},
		{"unknown incr seen before it was invoked", []history.Op{
			read(0, 1, 0, 10, "7@a"), lost(1, 0, 20, 30, "a"),
		}, false},
		{"failed incr did not happen", []history.Op{
			incr(0, 0, 0, 10, 1, "a", 10),
			{ID: 1, Kind: history.KindIncr, Workload: wl, Invoke: ms(20), Complete: ms(30), Outcome: history.Fail, Tag: "b"},
			read(2, 1, 40, 50, "1@a", "2@b"),
		}, false},
		{"other workloads, probes and stale ops are ignored", []history.Op{
			incr(0, 0, 0, 10, 1, "a", 10),
			{ID: 1, Kind: history.KindIncr, Workload: "w2", Invoke: ms(0), Complete: ms(10), Outcome: history.Ok, Value: 1, Tag: "x"},
			{ID: 2, Kind: history.KindProbe, Workload: wl, Invoke: ms(0), Complete: ms(10), Outcome: history.Ok, Value: 99},
			{ID: 3, Kind: history.KindStale, Workload: wl, Invoke: ms(0), Complete: ms(10), Outcome: history.Fail, Status: 409},
			read(4, 1, 40, 50, "1@a"),
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := CheckLinearizable(tc.ops, wl, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if res.Unknown {
				t.Fatal("check timed out")
			}
			if res.Ok != tc.ok {
				t.Fatalf("Ok = %t; want %t", res.Ok, tc.ok)
			}
		})
	}
}

func TestCheckLinearizableDropsUnseenUnknowns(t *testing.T) {
	ops := []history.Op{incr(0, 0, 0, 10, 1, "a", 10), lost(1, 0, 20, 30, "b"), read(2, 1, 40, 50, "1@a")}
	res, err := CheckLinearizable(ops, wl, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Ok || res.Ops != 2 || res.Dropped != 1 {
		t.Fatalf("got %+v; want Ok with 2 ops and 1 dropped", res)
	}
}

func TestCheckLinearizableRejects(t *testing.T) {
	full := read(1, 1, 40, 50)
	for i := range MaxLog {
		full.Log = append(full.Log, history.Entry{Index: uint64(i + 1), Value: fmt.Sprintf("%d@t%d", i+1, i)})
	}
	untagged := incr(0, 0, 0, 10, 1, "", 10)
	for _, tc := range []struct {
		name string
		ops  []history.Op
		want error
	}{
		{"trimmed log", []history.Op{full}, ErrTrimmed},
		{"untagged incr", []history.Op{untagged}, ErrUntagged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := CheckLinearizable(tc.ops, wl, 0)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v; want %v", err, tc.want)
			}
		})
	}
}

// TestCheckLinearizableManyConcurrent checks a long history with several
// clients and a single final read: the indices keep the search linear.
func TestCheckLinearizableManyConcurrent(t *testing.T) {
	t.Run("indices recorded", func(t *testing.T) { checkManyConcurrent(t, true) })
	t.Run("indices not recorded", func(t *testing.T) { checkManyConcurrent(t, false) })
}

func checkManyConcurrent(t *testing.T, indices bool) {
	const clients, rounds = 8, 100
	var ops []history.Op
	var values []string
	n := 0
	for r := range rounds {
		for c := range clients {
			n++
			tag := fmt.Sprintf("c%d-%d", c, r)
			// Every round's ops overlap; they commit in reverse client order.
			idx := uint64(r*clients + (clients - c))
			op := incr(len(ops), c, r*10, r*10+9, int64(idx), tag, idx)
			if !indices {
				op.Index = 0
			}
			ops = append(ops, op)
		}
		for c := clients - 1; c >= 0; c-- {
			idx := r*clients + (clients - c)
			values = append(values, fmt.Sprintf("%d@c%d-%d", idx, c, r))
		}
	}
	final := read(len(ops), clients, rounds*10, rounds*10+5, values...)
	for i := range final.Log {
		final.Log[i].Index = uint64(i + 1)
	}
	ops = append(ops, final)
	res, err := CheckLinearizable(ops, wl, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Ok || res.Ops != n+1 {
		t.Fatalf("got Ok=%t Unknown=%t Ops=%d; want Ok over %d ops", res.Ok, res.Unknown, res.Ops, n+1)
	}
}

func TestVisualize(t *testing.T) {
	ops := []history.Op{incr(0, 0, 0, 10, 1, "a", 10), read(1, 1, 40, 50)}
	res, err := CheckLinearizable(ops, wl, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Ok {
		t.Fatal("a read missing an acked append passed")
	}
	var b bytes.Buffer
	if err := Visualize(res, &b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "<html") || !strings.Contains(b.String(), "append(1@a #10)") {
		t.Fatalf("visualization lacks the html or the append: %.200s", b.String())
	}
	path := filepath.Join(t.TempDir(), "w1.html")
	if err := VisualizePath(res, path); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Fatalf("stat %s: %v", path, err)
	}
}
