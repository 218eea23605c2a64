package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/gossip"
	"github.com/lifeboat/lifeboat/transfer"
)

// machineCommander applies commands straight to a state machine, as a
// one-node Raft would.
type machineCommander struct {
	mu    sync.Mutex
	m     *fsm.Machine
	index uint64
	cmds  []string // the types applied, in order
}

func (c *machineCommander) apply(_ context.Context, cmd fsm.Command) (uint64, json.RawMessage, error) {
	b, err := fsm.Encode(cmd)
	if err != nil {
		return 0, nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.index++
	c.cmds = append(c.cmds, fmt.Sprintf("%T", cmd)[len("fsm."):])
	r := c.m.Apply(c.index, b)
	return c.index, nil, r.Err
}

func (c *machineCommander) view() *fsm.Machine { return c.m }

type peerMap map[string]gossip.Member

func (p peerMap) members() map[string]gossip.Member { return p }

// fakeSender acks every peer but those in refuse, and records who got what.
type fakeSender struct {
	mu     sync.Mutex
	refuse map[string]bool
	got    []string
}

func (s *fakeSender) Send(_ context.Context, _, peer string, ck *transfer.Checkpoint) (transfer.SendStats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, peer)
	if s.refuse[peer] {
		return transfer.SendStats{}, errors.New("refused")
	}
	return transfer.SendStats{Bytes: ck.Manifest.Bytes()}, nil
}

// newTestCommitter is a committer for workload w held by a1 (standbys as
// given), over a state machine of its own.
func newTestCommitter(t *testing.T, standbys []string, refuse ...string) (*committer, *machineCommander, *fakeSender, uint64) {
	t.Helper()
	cmd := &machineCommander{m: fsm.New()}
	spec := fsm.WorkloadSpec{ID: "w", Command: []string{"/bin/true"}, Standbys: len(standbys)}.WithDefaults()
	ctx := context.Background()
	if _, _, err := cmd.apply(ctx, fsm.WorkloadSubmit{Spec: spec, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	epoch, _, err := cmd.apply(ctx, fsm.WorkloadGrant{Workload: "w", Holder: "a1", Standbys: standbys, At: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	peers := peerMap{}
	for _, p := range []string{"b1", "c1"} {
		peers[p] = gossip.Member{Name: p, State: gossip.MemberAlive, Meta: gossip.Meta{Addr: "10.0.0.2", TransferPort: 7948}}
	}
	snd := &fakeSender{refuse: map[string]bool{}}
	for _, r := range refuse {
		snd.refuse[r] = true
	}
	c := &committer{name: "a1", state: cmd, peers: peers, prop: cmd, sender: snd, now: time.Now,
		metrics: newMetrics(&Node{}), log: slog.New(slog.DiscardHandler), prepared: map[string]uint64{}}
	return c, cmd, snd, epoch
}

func testCheckpoint(seq uint64) *transfer.Checkpoint {
	return &transfer.Checkpoint{Digest: strings.Repeat("ab", 32),
		Manifest: &transfer.Manifest{Workload: "w", Seq: seq, Files: []transfer.File{{Path: "pages.img", Size: 4096}}}}
}

// TestCommitterTwoPhases: a checkpoint is prepared, shipped to the
// standbys, and committed with the holder and every standby that acked;
// a standby that did not ack is left out; the seq prepared here counts
// for the next one even before the replica shows it.
func TestCommitterTwoPhases(t *testing.T) {
	c, cmd, snd, epoch := newTestCommitter(t, []string{"b1", "c1"}, "c1")
	if err := c.commit(context.Background(), "w", epoch, testCheckpoint(1)); err != nil {
		t.Fatal(err)
	}
	w, _ := cmd.m.Workload("w")
	if k := len(w.Checkpoints); k != 1 || !slices.Equal(w.Checkpoints[0].Standbys, []string{"a1", "b1"}) {
		t.Fatalf("committed %+v, want seq 1 held by a1 and b1", w.Checkpoints)
	}
	if slices.Sort(snd.got); !slices.Equal(snd.got, []string{"b1", "c1"}) {
		t.Fatalf("shipped to %v, want both standbys", snd.got)
	}
	if want := []string{"CheckpointPrepare", "CheckpointCommit"}; !slices.Equal(cmd.cmds[2:], want) {
		t.Fatalf("commands %v, want %v after the grant", cmd.cmds[2:], want)
	}
	if c.lastPrepared("w") != 1 {
		t.Fatalf("last prepared %d, want 1", c.lastPrepared("w"))
	}
}

// TestCommitterAborts: a checkpoint that a node it must reach did not
// verify, or that no standby verified, is aborted, never committed.
func TestCommitterAborts(t *testing.T) {
	for name, tc := range map[string]struct {
		standbys, refuse, must []string
		want                   error
	}{
		"the target refused":    {standbys: []string{"b1"}, refuse: []string{"c1"}, must: []string{"c1"}},
		"every standby refused": {standbys: []string{"b1", "c1"}, refuse: []string{"b1", "c1"}, want: errNoStandby},
	} {
		t.Run(name, func(t *testing.T) {
			c, cmd, _, epoch := newTestCommitter(t, tc.standbys, tc.refuse...)
			err := c.commit(context.Background(), "w", epoch, testCheckpoint(1), tc.must...)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("commit: %v, want a failure (%v)", err, tc.want)
			}
			w, _ := cmd.m.Workload("w")
			if len(w.Checkpoints) != 0 || w.Pending != nil {
				t.Fatalf("after the abort: committed %+v, pending %+v", w.Checkpoints, w.Pending)
			}
			if last := cmd.cmds[len(cmd.cmds)-1]; last != "CheckpointAbort" {
				t.Fatalf("last command %s, want CheckpointAbort", last)
			}
		})
	}
}

// TestCommitterAloneAndLazy: with no standby the holder's copy is
// committed alone; a lazy checkpoint goes to its target only, never to
// the standbys, and is recorded as lazy from this node.
func TestCommitterAloneAndLazy(t *testing.T) {
	c, cmd, snd, epoch := newTestCommitter(t, nil)
	if err := c.commit(context.Background(), "w", epoch, testCheckpoint(1)); err != nil {
		t.Fatal(err)
	}
	if w, _ := cmd.m.Workload("w"); len(w.Checkpoints) != 1 || len(snd.got) != 0 {
		t.Fatalf("alone: committed %+v, shipped to %v", w.Checkpoints, snd.got)
	}

	c, cmd, snd, epoch = newTestCommitter(t, []string{"b1"})
	if err := c.commitLazy(context.Background(), "w", epoch, testCheckpoint(1), "c1"); err != nil {
		t.Fatal(err)
	}
	w, _ := cmd.m.Workload("w")
	if !slices.Equal(snd.got, []string{"c1"}) || len(w.Checkpoints) != 1 || w.Checkpoints[0].LazyFrom != "a1" {
		t.Fatalf("lazy: shipped to %v, committed %+v", snd.got, w.Checkpoints)
	}
}
