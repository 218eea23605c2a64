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

// trimmedRead is an ok read over [from, to] ms of a log that trimmed
// trimmed entries through index through, showing values at indices
// first, first+1, ….
func trimmedRead(id, c, from, to int, trimmed, through, first uint64, values ...string) history.Op {
	op := read(id, c, from, to, values...)
	op.Trimmed, op.TrimmedThrough = trimmed, through
	for i := range op.Log {
		op.Log[i].Index = first + uint64(i)
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
		{"trimmed read shows the rest", []history.Op{
			incr(0, 0, 0, 10, 1, "a", 10), incr(1, 0, 20, 30, 2, "b", 11), incr(2, 0, 40, 50, 3, "c", 12),
			trimmedRead(3, 1, 60, 70, 2, 11, 12, "3@c"),
		}, true},
		{"acked appends trimmed before any read showed them", []history.Op{
			incr(0, 0, 0, 10, 1, "a", 10), incr(1, 0, 20, 30, 2, "b", 11),
			trimmedRead(2, 1, 40, 50, 2, 11, 0),
		}, true},
		{"acked appends without indices trimmed", []history.Op{
			incr(0, 0, 0, 10, 1, "a", 0), incr(1, 0, 20, 30, 2, "b", 0), incr(2, 0, 40, 50, 3, "c", 0),
			trimmedRead(3, 1, 60, 70, 2, 11, 12, "3@c"),
		}, true},
		{"unknown incr trimmed before any read showed it", []history.Op{
			incr(0, 0, 0, 10, 1, "a", 10), lost(1, 0, 20, 30, "b"), incr(2, 0, 40, 50, 3, "c", 12),
			trimmedRead(3, 1, 60, 70, 2, 11, 12, "3@c"),
		}, true},
		{"a read, then the same log trimmed", []history.Op{
			incr(0, 0, 0, 10, 1, "a", 10), incr(1, 0, 20, 30, 2, "b", 11),
			read(2, 1, 40, 50, "1@a", "2@b"), incr(3, 0, 60, 70, 3, "c", 12),
			trimmedRead(4, 1, 80, 90, 1, 10, 11, "2@b", "3@c"),
		}, true},
		{"trimmed read misses an acked append above its trim index", []history.Op{
			// Two trimmed (a and, say, x at 11), so the count allows b's
			// absence; its index does not.
			incr(0, 0, 0, 10, 1, "a", 10), lost(1, 0, 20, 30, "x"), incr(2, 0, 40, 50, 3, "b", 12), incr(3, 0, 60, 70, 4, "c", 13),
			trimmedRead(4, 1, 80, 90, 2, 11, 13, "4@c"),
		}, false},
		{"an acked append lost below the trim index", []history.Op{
			// b is acked at 11, but the log trimmed one entry through 11:
			// a and b cannot both have been in it.
			incr(0, 0, 0, 10, 1, "a", 10), incr(1, 0, 20, 30, 2, "b", 11), incr(2, 0, 40, 50, 3, "c", 12),
			trimmedRead(3, 1, 60, 70, 1, 11, 12, "3@c"),
		}, false},
		{"trimmed read keeps an entry at its trim index", []history.Op{
			incr(0, 0, 0, 10, 1, "a", 10), incr(1, 0, 20, 30, 2, "b", 11),
			trimmedRead(2, 1, 40, 50, 1, 11, 11, "2@b"),
		}, false},
		{"the trim point goes back", []history.Op{
			incr(0, 0, 0, 10, 1, "a", 10), incr(1, 0, 20, 30, 2, "b", 11),
			trimmedRead(2, 1, 40, 50, 1, 10, 11, "2@b"), read(3, 1, 60, 70, "2@b"),
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

func TestCheckLinearizableRejectsUntagged(t *testing.T) {
	if _, err := CheckLinearizable([]history.Op{incr(0, 0, 0, 10, 1, "", 10)}, wl, 0); !errors.Is(err, ErrUntagged) {
		t.Fatalf("err = %v; want ErrUntagged", err)
	}
}

// TestCheckLinearizableLongTrimmedRun checks a run that appends more than
// the log keeps, as a long Jepsen run does: reads show the newest entries
// and the trim point, and the whole run is checked, quickly, with or
// without the indices of the acks. The trim point is reported.
func TestCheckLinearizableLongTrimmedRun(t *testing.T) {
	const clients, rounds, keep = 4, 550, 1000 // 2,200 appends
	for _, indices := range []bool{true, false} {
		t.Run(fmt.Sprint("indices recorded ", indices), func(t *testing.T) {
			var ops []history.Op
			var log []history.Entry
			for r := range rounds {
				for c := range clients {
					idx := uint64(len(log) + 1)
					tag := fmt.Sprintf("c%d-%d", c, r)
					op := incr(len(ops), c, r*10, r*10+9, int64(idx), tag, idx)
					if !indices {
						op.Index = 0
					}
					ops = append(ops, op)
					log = append(log, history.Entry{Index: idx, Epoch: 1, Value: fmt.Sprintf("%d@%s", idx, tag)})
				}
				if r%25 == 24 || r == rounds-1 {
					ops = append(ops, readTail(len(ops), clients, r*10+9, r*10+10, log, keep))
				}
			}
			res, err := CheckLinearizable(ops, wl, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Ok || res.Trimmed != clients*rounds-keep || res.TrimmedThrough != clients*rounds-keep {
				t.Fatalf("Ok=%t Unknown=%t, trimmed %d through %d; want Ok, %d trimmed through index %d",
					res.Ok, res.Unknown, res.Trimmed, res.TrimmedThrough, clients*rounds-keep, clients*rounds-keep)
			}
		})
	}
}

// readTail is a read of the newest keep entries of log, with the trim
// point before them.
func readTail(id, c, from, to int, log []history.Entry, keep int) history.Op {
	op := read(id, c, from, to)
	cut := max(0, len(log)-keep)
	op.Log = append([]history.Entry(nil), log[cut:]...)
	op.Trimmed = uint64(cut)
	if cut > 0 {
		op.TrimmedThrough = log[cut-1].Index
	}
	return op
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
