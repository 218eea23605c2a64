package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeLog is a results log that accepts epoch 7 only.
type fakeLog struct {
	mu      sync.Mutex
	entries []string
}

func (f *fakeLog) handler(t *testing.T) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/workloads/c/results", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Header.Get("X-Lifeboat-Epoch") != "7" {
			http.Error(w, `{"error":{"code":"stale_epoch"}}`, http.StatusConflict)
			return
		}
		f.mu.Lock()
		f.entries = append(f.entries, string(b))
		index := 100 + len(f.entries)
		f.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"index":%d,"epoch":7,"value":%q}`, index, b)
	})
	mux.HandleFunc("GET /v1/workloads/c/results", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		var out []map[string]string
		for _, e := range f.entries {
			out = append(out, map[string]string{"value": e})
		}
		_ = json.NewEncoder(w).Encode(out)
	})
	return mux
}

// TestResultsMode: an increment is answered only once COUNT@TAG is in the
// log; a refused epoch answers 409 and acknowledges nothing; a counter
// starting over (restored from an older checkpoint, or fresh) continues
// past the largest count in the log.
func TestResultsMode(t *testing.T) {
	fl := &fakeLog{}
	api := httptest.NewServer(fl.handler(t))
	defer api.Close()

	l, err := newResultsLog(api.URL, "c", "7")
	if err != nil {
		t.Fatal(err)
	}
	c := &counter{results: l}
	srv := httptest.NewServer(c.routes())
	defer srv.Close()
	for i, tag := range []string{"a", "b", "c"} {
		resp, err := http.Get(srv.URL + "/?tag=" + tag)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := strings.TrimSpace(string(b)); got != string(rune('1'+i)) || resp.Header.Get("X-Lifeboat-Epoch") != "7" ||
			resp.Header.Get("X-Lifeboat-Index") != fmt.Sprint(101+i) {
			t.Fatalf("GET /?tag=%s = %q (epoch %q, index %q); want %d under epoch 7 at index %d",
				tag, got, resp.Header.Get("X-Lifeboat-Epoch"), resp.Header.Get("X-Lifeboat-Index"), i+1, 101+i)
		}
	}
	if strings.Join(fl.entries, ",") != "1@a,2@b,3@c" {
		t.Fatalf("log %v", fl.entries)
	}
	if got := get(t, srv.URL+"/?tag=x@y"); !strings.Contains(got, "tag") {
		t.Fatalf("a tag with @: %q, want refused", got)
	}

	stale, _ := newResultsLog(api.URL, "c", "6")
	old := &counter{results: stale, count: 1}
	osrv := httptest.NewServer(old.routes())
	defer osrv.Close()
	resp, err := http.Get(osrv.URL + "/?tag=d")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict || len(fl.entries) != 3 {
		t.Fatalf("an old epoch's increment: %s, log %v; want 409 and nothing appended", resp.Status, fl.entries)
	}

	restored := &counter{count: 1} // an older checkpoint
	if err := restored.catchUp(l, time.Second); err != nil || restored.count != 3 {
		t.Fatalf("catch up: count %d, %v; want 3 from the log", restored.count, err)
	}
	api.Close()
	if err := (&counter{}).catchUp(l, 300*time.Millisecond); err == nil {
		t.Fatal("catch up without the log succeeded: the counter could repeat an acknowledged count")
	}
}
