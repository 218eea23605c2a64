package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b))
}

// TestAppCheckpointRoundTrip: the hook writes the count and a new process
// restored from the directory continues it.
func TestAppCheckpointRoundTrip(t *testing.T) {
	c := &counter{ballast: make([]byte, 1<<20)}
	srv := httptest.NewServer(c.routes())
	defer srv.Close()
	for i := 1; i <= 3; i++ {
		if got := get(t, srv.URL+"/"); got != strconv.Itoa(i) {
			t.Fatalf("GET / = %q, want %d", got, i)
		}
	}
	dir := t.TempDir()
	resp, err := http.Post(srv.URL+"/lifeboat/checkpoint?dir="+dir, "", nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("checkpoint hook: %v %v", resp, err)
	}
	c2 := &counter{}
	if err := c2.restore(dir); err != nil {
		t.Fatal(err)
	}
	srv2 := httptest.NewServer(c2.routes())
	defer srv2.Close()
	if got := get(t, srv2.URL+"/"); got != "4" {
		t.Fatalf("after restore GET / = %q, want 4", got)
	}
	if resp, _ := http.Post(srv.URL+"/lifeboat/checkpoint?dir=relative", "", nil); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("relative dir accepted: %d", resp.StatusCode)
	}
}
