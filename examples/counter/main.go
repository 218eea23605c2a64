// Command counter is lifeboat's demo and test workload: an HTTP service
// whose only state is an in-memory counter. GET / increments it and
// returns the new value; GET /value returns it unchanged. --ballast-mib N
// holds N MiB of touched memory, so checkpoints have a realistic size, and
// POST /ballast/touch?percent=P rewrites P % of it (delta tests), and GET
// /ballast/sum is its SHA-256 (a restore that lost a page shows here).
//
// It is lifeboat-aware in app mode: POST /lifeboat/checkpoint?dir=D writes
// its state into D, and when started with LIFEBOAT_RESTORE_DIR it reads it
// back. In criu mode it needs nothing: CRIU saves the whole process.
package main

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// state is what app-mode checkpoints save.
type state struct {
	Count uint64 `json:"count"`
}

type counter struct {
	mu      sync.Mutex // guards count and ballast
	count   uint64
	ballast []byte
	touches byte
	// results, when set (--results), makes every increment durable in the
	// fenced results log before it is answered (results.go).
	results  *resultsLog
	appendMu sync.Mutex // serialises durable increments
}

func main() {
	port := flag.Int("port", 8080, "port to listen on (all addresses, so a restore on another host answers)")
	ballastMiB := flag.Int("ballast-mib", 0, "MiB of touched memory to hold")
	results := flag.Bool("results", false, "acknowledge an increment (GET /?tag=T) only once COUNT@T is in the fenced results log; continue past the log's largest count on start")
	flag.Parse()
	c := &counter{ballast: make([]byte, *ballastMiB<<20)}
	c.touch(100)
	if dir := os.Getenv("LIFEBOAT_RESTORE_DIR"); dir != "" {
		if err := c.restore(dir); err != nil {
			log.Fatalf("restoring from %s: %v", dir, err)
		}
		log.Printf("restored count %d from %s", c.count, dir)
	}
	if *results {
		l, err := newResultsLog(os.Getenv("LIFEBOAT_API"), os.Getenv("LIFEBOAT_WORKLOAD"), os.Getenv("LIFEBOAT_EPOCH"))
		if err != nil {
			log.Fatal(err)
		}
		if err := c.catchUp(l, 20*time.Second); err != nil {
			log.Fatalf("reading the results log: %v", err)
		}
		c.results = l
		log.Printf("results mode: continuing from count %d", c.count)
	}
	ln, err := net.Listen("tcp4", fmt.Sprintf("0.0.0.0:%d", *port))
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("counter listening on %s (ballast %d MiB, epoch %s)", ln.Addr(), *ballastMiB, os.Getenv("LIFEBOAT_EPOCH"))
	log.Fatal(http.Serve(ln, c.routes()))
}

func (c *counter) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		if c.results != nil {
			c.incrDurable(w, r)
			return
		}
		c.mu.Lock()
		c.count++
		n := c.count
		c.mu.Unlock()
		fmt.Fprintln(w, n)
	})
	mux.HandleFunc("GET /value", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Lifeboat-Epoch", os.Getenv("LIFEBOAT_EPOCH"))
		c.mu.Lock()
		defer c.mu.Unlock()
		fmt.Fprintln(w, c.count)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /ballast/sum", func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		sum := sha256.Sum256(c.ballast)
		c.mu.Unlock()
		fmt.Fprintln(w, hex.EncodeToString(sum[:]))
	})
	mux.HandleFunc("POST /ballast/touch", func(w http.ResponseWriter, r *http.Request) {
		p, err := strconv.Atoi(r.URL.Query().Get("percent"))
		if err != nil || p < 0 || p > 100 {
			http.Error(w, "percent must be 0-100", http.StatusBadRequest)
			return
		}
		c.touch(p)
		fmt.Fprintln(w, "touched", p)
	})
	mux.HandleFunc("POST /lifeboat/checkpoint", c.checkpoint)
	return mux
}

// touch rewrites the first percent % of the ballast with fresh random
// bytes, so that no two pages are alike and a delta has nothing to share
// but what was left untouched.
func (c *counter) touch(percent int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.touches++
	var seed [32]byte
	seed[0] = c.touches
	binary.LittleEndian.PutUint64(seed[8:], uint64(time.Now().UnixNano()))
	n := len(c.ballast) * percent / 100
	_, _ = rand.NewChaCha8(seed).Read(c.ballast[:n])
}

// checkpoint is the app-mode hook: write the state into ?dir=.
func (c *counter) checkpoint(w http.ResponseWriter, r *http.Request) {
	dir := r.URL.Query().Get("dir")
	if dir == "" || !filepath.IsAbs(dir) {
		http.Error(w, "dir must be an absolute path", http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	s := state{Count: c.count}
	c.mu.Unlock()
	if err := writeState(filepath.Join(dir, "state.json"), s); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	fmt.Fprintln(w, "ok", s.Count)
}

func writeState(path string, s state) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (c *counter) restore(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		return err
	}
	var s state
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	c.count = s.Count
	return nil
}
