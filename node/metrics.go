package node

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lifeboat/lifeboat/gossip"
)

// metrics is the node's Prometheus registry and instruments. Each node has
// its own registry, so several nodes in one test process do not collide.
type metrics struct {
	reg         *prometheus.Registry
	leader      prometheus.Gauge
	applySec    prometheus.Histogram
	leaseRenews *prometheus.CounterVec
	autopilotN  *prometheus.CounterVec
	httpReqs    *prometheus.CounterVec

	checkpointBytes prometheus.Counter
	transfers       *prometheus.CounterVec
	transferBytes   prometheus.Counter
	migrations      *prometheus.CounterVec
	fences          prometheus.Counter
	notices         *prometheus.CounterVec
	evacMoves       *prometheus.HistogramVec
	evacLate        prometheus.Counter
	preemptions     prometheus.Counter
}

func newMetrics(n *Node) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{Name: "lifeboat_raft_leader",
			Help: "1 when this peer leads the Raft cluster."}),
		applySec: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "lifeboat_raft_apply_seconds",
			Help: "Time to commit and apply one command on the leader.", Buckets: prometheus.ExponentialBuckets(0.0002, 2, 14)}),
		leaseRenews: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lifeboat_lease_renewals_total",
			Help: "Node lease renewals applied by this leader, by result."}, []string{"result"}),
		autopilotN: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lifeboat_autopilot_actions_total",
			Help: "Autopilot actions executed by this leader, by kind."}, []string{"action"}),
		httpReqs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lifeboat_http_requests_total",
			Help: "Admin API requests, by method and status code."}, []string{"method", "code"}),
		checkpointBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "lifeboat_checkpoint_committed_bytes_total",
			Help: "Bytes of the checkpoints this peer committed as holder."}),
		transfers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lifeboat_transfers_total",
			Help: "Checkpoint transfers this peer sent, by result."}, []string{"result"}),
		transferBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "lifeboat_transfer_sent_bytes_total",
			Help: "Chunk bytes this peer sent (what delta transfer did not save)."}),
		migrations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lifeboat_migrations_total",
			Help: "Workload moves this peer handed off as holder, by result."}, []string{"result"}),
		fences: prometheus.NewCounter(prometheus.CounterOpts{Name: "lifeboat_fences_total",
			Help: "Times this peer froze its workloads because its own lease ran out."}),
		notices: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lifeboat_notices_total",
			Help: "Termination notices and rebalance recommendations this peer received, by kind."}, []string{"kind"}),
		evacMoves: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "lifeboat_evacuation_move_seconds",
			Help:    "Moves this leader started off doomed or draining nodes (and preemptions), start to running elsewhere, by result.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 12)}, []string{"result"}),
		evacLate: prometheus.NewCounter(prometheus.CounterOpts{Name: "lifeboat_evacuation_late_total",
			Help: "Moves started although the deadline check expected them to finish after the host's deadline."}),
		preemptions: prometheus.NewCounter(prometheus.CounterOpts{Name: "lifeboat_preemptions_total",
			Help: "Workloads this leader took off a target to make room for more important evacuees."}),
	}
	members := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lifeboat_gossip_members_alive",
		Help: "Peers gossip sees alive."}, func() float64 {
		if n.gossip == nil {
			return 0
		}
		alive := 0
		for _, mm := range n.gossip.Members() {
			if mm.State == gossip.MemberAlive {
				alive++
			}
		}
		return float64(alive)
	})
	applied := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lifeboat_raft_applied_index",
		Help: "Last Raft index applied to this peer's state machine."}, func() float64 {
		if n.raft == nil {
			return 0
		}
		return float64(n.raft.AppliedIndex())
	})
	m.reg.MustRegister(m.leader, m.applySec, m.leaseRenews, m.autopilotN, m.httpReqs, members, applied,
		m.checkpointBytes, m.transfers, m.transferBytes, m.migrations, m.fences, m.notices, m.evacMoves, m.evacLate, m.preemptions,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

func (m *metrics) setLeader(is bool) {
	if is {
		m.leader.Set(1)
	} else {
		m.leader.Set(0)
	}
}

func (m *metrics) applied(d time.Duration) { m.applySec.Observe(d.Seconds()) }

func (m *metrics) leaseBatch(n int, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.leaseRenews.WithLabelValues(result).Add(float64(n))
}

func (m *metrics) autopilot(kind string) { m.autopilotN.WithLabelValues(kind).Inc() }

// instrument counts every admin API request by method and status.
func (m *metrics) instrument(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(sw, r)
		m.httpReqs.WithLabelValues(r.Method, strconv.Itoa(sw.code)).Inc()
	})
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}
