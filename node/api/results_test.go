package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/lifeboat/lifeboat/fsm"
)

// logBackend answers results reads with log, or err.
type logBackend struct {
	*fakeBackend
	log fsm.ResultsLog
	err error
}

func (b logBackend) Results(context.Context, string) (fsm.ResultsLog, error) { return b.log, b.err }

func newLogServer(t *testing.T, log fsm.ResultsLog, err error) *httptest.Server {
	t.Helper()
	fb := &fakeBackend{workloads: map[string]fsm.WorkloadSpec{}, epoch: 7}
	srv := httptest.NewServer(NewServer(logBackend{fb, log, err}, certified, nil))
	t.Cleanup(srv.Close)
	return srv
}

// TestResultsTrimPoint: a read answers the entries kept as the JSON array
// it always was, and the trim point in headers, which ResultsLog reads.
func TestResultsTrimPoint(t *testing.T) {
	kept := []fsm.Result{{Index: 40, Epoch: 3, Value: "5@a"}, {Index: 42, Epoch: 3, Value: "6@b"}}
	srv := newLogServer(t, fsm.ResultsLog{Trimmed: 4, TrimmedThrough: 39, Results: kept}, nil)

	resp, err := http.Get(srv.URL + "/v1/workloads/w/results")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body []Result
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || len(body) != 2 || body[0].Value != "5@a" {
		t.Fatalf("body %+v (%v); want the two entries kept, as an array", body, err)
	}
	if tr, th := resp.Header.Get(HeaderResultsTrimmed), resp.Header.Get(HeaderResultsTrimmedThrough); tr != "4" || th != "39" {
		t.Fatalf("headers trimmed %q through %q; want 4 through 39", tr, th)
	}

	cl := &Client{Base: srv.URL}
	l, err := cl.ResultsLog(context.Background(), "w")
	if err != nil || l.Trimmed != 4 || l.TrimmedThrough != 39 || len(l.Results) != 2 || l.Results[1].Index != 42 {
		t.Fatalf("ResultsLog = %+v, %v; want 4 trimmed through 39 and the 2 kept", l, err)
	}
	if res, err := cl.Results(context.Background(), "w"); err != nil || len(res) != 2 {
		t.Fatalf("Results = %+v, %v; want the 2 kept", res, err)
	}
}

// TestResultsLogOfAnOlderServer: a server that reports no trim point
// reads as one that trimmed nothing; a garbled one is an error.
func TestResultsLogOfAnOlderServer(t *testing.T) {
	for _, tc := range []struct {
		name, trimmed string
		ok            bool
	}{
		{"no headers", "", true},
		{"garbled header", "many", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.trimmed != "" {
					w.Header().Set(HeaderResultsTrimmed, tc.trimmed)
				}
				fmt.Fprint(w, `[{"index":3,"epoch":1,"value":"1@a"}]`)
			}))
			defer srv.Close()
			l, err := (&Client{Base: srv.URL}).ResultsLog(context.Background(), "w")
			switch {
			case tc.ok && (err != nil || l.Trimmed != 0 || l.TrimmedThrough != 0 || len(l.Results) != 1):
				t.Fatalf("ResultsLog = %+v, %v; want the entry and no trim point", l, err)
			case !tc.ok && err == nil:
				t.Fatalf("ResultsLog = %+v; want an error naming the header", l)
			}
		})
	}
}

// TestResultsReadError: a failed read sets no trim point and answers the
// error.
func TestResultsReadError(t *testing.T) {
	srv := newLogServer(t, fsm.ResultsLog{Trimmed: 9}, fmt.Errorf("%w: no workload", fsm.ErrNotFound))
	resp, err := http.Get(srv.URL + "/v1/workloads/w/results")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get(HeaderResultsTrimmed) != "" {
		t.Fatalf("status %d, trimmed %q; want 404 and no trim point", resp.StatusCode, resp.Header.Get(HeaderResultsTrimmed))
	}
	if _, err := (&Client{Base: srv.URL}).ResultsLog(context.Background(), "w"); !errors.Is(err, fsm.ErrNotFound) {
		t.Fatalf("ResultsLog = %v; want ErrNotFound", err)
	}
}
