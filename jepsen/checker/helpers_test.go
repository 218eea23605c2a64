package checker

import (
	"strings"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/jepsen/history"
)

const wl = "w1"

var wls = []string{wl}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// incr is an ok incr over [from, to] ms on host under epoch, answering
// count, with its result at index.
func incr(id, from, to int, host string, epoch uint64, count int64, tag string, index uint64) history.Op {
	return history.Op{ID: id, Client: id % 3, Kind: history.KindIncr, Workload: wl, Host: host,
		Invoke: ms(from), Complete: ms(to), Outcome: history.Ok, Value: count, Epoch: epoch, Index: index, Tag: tag}
}

// probe is an ok probe showing count under epoch.
func probe(id, from, to int, host string, epoch uint64, count int64) history.Op {
	return history.Op{ID: id, Kind: history.KindProbe, Workload: wl, Host: host,
		Invoke: ms(from), Complete: ms(to), Outcome: history.Ok, Value: count, Epoch: epoch}
}

// read is an ok read showing entries.
func read(id, from, to int, log ...history.Entry) history.Op {
	return history.Op{ID: id, Kind: history.KindRead, Workload: wl, Host: "h1",
		Invoke: ms(from), Complete: ms(to), Outcome: history.Ok, Log: log}
}

// stale is a stale append with outcome and status.
func stale(id int, outcome string, status int, value string) history.Op {
	return history.Op{ID: id, Kind: history.KindStale, Workload: wl, Host: "h1",
		Invoke: ms(id), Complete: ms(id + 1), Outcome: outcome, Status: status, Epoch: 1, Tag: value}
}

func ent(index, epoch uint64, value string) history.Entry {
	return history.Entry{Index: index, Epoch: epoch, Value: value}
}

// expect fails t unless v passes as wanted; a failing verdict must say
// something that contains each of want.
func expect(t *testing.T, v Verdict, pass bool, want ...string) {
	t.Helper()
	if v.Pass != pass {
		t.Fatalf("%s: Pass = %t; want %t (problems %q, figures %v)", v.Name, v.Pass, pass, v.Problems, v.Figures)
	}
	if pass && len(v.Problems) > 0 {
		t.Fatalf("%s passed with problems %q", v.Name, v.Problems)
	}
	all := strings.Join(v.Problems, "\n")
	for _, s := range want {
		if !strings.Contains(all, s) {
			t.Fatalf("%s: problems %q lack %q", v.Name, v.Problems, s)
		}
	}
}

// figure fails t unless v's figure name is want.
func figure(t *testing.T, v Verdict, name string, want any) {
	t.Helper()
	if got := v.Figures[name]; got != want {
		t.Fatalf("%s: figure %s = %v (%T); want %v (%T)", v.Name, name, got, got, want, want)
	}
}
