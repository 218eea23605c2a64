package emulate

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"html"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Compute Engine's metadata server.
const (
	gcpPrefix     = "/computeMetadata/v1/"
	gcpProjectID  = "lifeboat-emulated"
	gcpProjectNum = "271828182845"
	gcpPrivateIP  = "10.128.0.2"
)

// gcpReq is what a GET asks of the tree; its key names the answer a
// wait_for_change waits on.
type gcpReq struct {
	path      string // below /computeMetadata/v1/, "" for the root
	recursive bool
	alt       string // "", json or text
}

func (q gcpReq) key() string {
	return fmt.Sprintf("%s?recursive=%t&alt=%s", q.path, q.recursive, q.alt)
}

// gcpAnswer is one response.
type gcpAnswer struct {
	status   int
	body     string
	ctype    string
	etag     string
	location string // for a 301
}

// watch is the change broadcast for one request key: closed when the
// answer's ETag moves away from etag.
type watch struct {
	req     gcpReq
	etag    string
	ch      chan struct{}
	waiters int
}

func (e *Emulator) serveGCP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Metadata-Flavor", "Google")
	h.Set("Server", "Metadata Server for VM")
	h.Set("X-Xss-Protection", "0")
	h.Set("X-Frame-Options", "SAMEORIGIN")
	switch {
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		h.Set("Allow", "GET, HEAD")
		gcpError(w, http.StatusMethodNotAllowed, "Method "+r.Method+" is not allowed.")
		return
	case r.URL.Path == "/":
		// The probe OnGCE sends: no Metadata-Flavor needed, the answer's
		// header is what it checks.
		writeGCP(w, gcpAnswer{status: http.StatusOK, body: "computeMetadata/\n", ctype: "application/text"})
		return
	case r.Header.Get("X-Forwarded-For") != "":
		gcpError(w, http.StatusForbidden, "Your client does not have permission to get URL "+r.URL.Path+
			" from this server. Request had an X-Forwarded-For header.")
		return
	case r.Header.Get("Metadata-Flavor") != "Google":
		gcpError(w, http.StatusForbidden, "Your client does not have permission to get URL "+r.URL.Path+
			" from this server. Missing Metadata-Flavor:Google header.")
		return
	}
	e.serveGCPPath(w, r)
}

func (e *Emulator) serveGCPPath(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/computeMetadata", "/computeMetadata/":
		writeGCP(w, gcpAnswer{status: http.StatusOK, body: "v1/\n", ctype: "application/text"})
		return
	case "/computeMetadata/v1":
		writeGCP(w, gcpAnswer{status: http.StatusMovedPermanently, location: gcpPrefix})
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, gcpPrefix)
	if !ok {
		gcpError(w, http.StatusNotFound, "The requested URL "+r.URL.Path+" was not found on this server.")
		return
	}
	q, wait, last, timeout, err := parseGCPQuery(rest, r.URL.Query())
	if err != nil {
		gcpError(w, http.StatusBadRequest, err.Error())
		return
	}
	var a gcpAnswer
	if wait {
		if a, ok = e.gcpWait(r.Context(), q, last, timeout); !ok {
			return // the client went away
		}
	} else {
		e.mu.Lock()
		a = e.gcpRenderLocked(q)
		e.mu.Unlock()
	}
	if a.location != "" && r.URL.RawQuery != "" {
		a.location += "?" + r.URL.RawQuery
	}
	if a.status == http.StatusNotFound {
		gcpError(w, http.StatusNotFound, "The requested URL "+r.URL.Path+" was not found on this server.")
		return
	}
	writeGCP(w, a)
}

// parseGCPQuery reads recursive, alt, wait_for_change, last_etag and
// timeout_sec. last is nil without last_etag.
func parseGCPQuery(path string, v url.Values) (q gcpReq, wait bool, last *string, timeout time.Duration, err error) {
	q.path = path
	flag := func(name string) (bool, error) {
		switch s := strings.ToLower(v.Get(name)); s {
		case "", "false":
			return false, nil
		case "true":
			return true, nil
		default:
			return false, fmt.Errorf("invalid value %q for parameter %s: want true or false", v.Get(name), name)
		}
	}
	if q.recursive, err = flag("recursive"); err != nil {
		return
	}
	if wait, err = flag("wait_for_change"); err != nil {
		return
	}
	switch q.alt = v.Get("alt"); q.alt {
	case "", "json", "text":
	default:
		err = fmt.Errorf("invalid value %q for parameter alt: want json or text", q.alt)
		return
	}
	if v.Has("last_etag") {
		s := v.Get("last_etag")
		last = &s
	}
	if s := v.Get("timeout_sec"); s != "" {
		n, perr := strconv.Atoi(s)
		if perr != nil || n < 1 {
			err = fmt.Errorf("invalid value %q for parameter timeout_sec: want a positive number of seconds", s)
			return
		}
		timeout = time.Duration(n) * time.Second
	}
	return
}

// gcpWait is wait_for_change: the answer once its ETag differs from last
// (without last: from the ETag now), or at the timeout, or — false — when
// ctx ends. It blocks on the key's change broadcast, never polls.
func (e *Emulator) gcpWait(ctx context.Context, q gcpReq, last *string, timeout time.Duration) (gcpAnswer, bool) {
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.waiting++
	defer func() { e.waiting-- }()
	for {
		a := e.gcpRenderLocked(q)
		if a.status != http.StatusOK {
			return a, true
		}
		if last == nil {
			last = &a.etag
		}
		if a.etag != *last {
			return a, true
		}
		w := e.watchLocked(q, a.etag)
		e.mu.Unlock()
		woke := false
		select {
		case <-w.ch:
			woke = true
		case <-expired:
		case <-ctx.Done():
		case <-e.done:
		}
		e.mu.Lock()
		e.unwatchLocked(w)
		switch {
		case woke:
			continue // the value changed; changed back is waited out again
		case ctx.Err() != nil:
			return gcpAnswer{}, false
		case e.closed:
			return gcpAnswer{status: http.StatusServiceUnavailable, body: "metadata server shutting down\n", ctype: "application/text"}, true
		}
		return e.gcpRenderLocked(q), true
	}
}

// watchLocked joins (or opens) the change broadcast for q at etag, the
// current answer's ETag.
func (e *Emulator) watchLocked(q gcpReq, etag string) *watch {
	w := e.watches[q.key()]
	if w == nil {
		w = &watch{req: q, etag: etag, ch: make(chan struct{})}
		e.watches[q.key()] = w
	}
	w.waiters++
	return w
}

// unwatchLocked leaves w; the last waiter to leave an unfired broadcast
// removes it.
func (e *Emulator) unwatchLocked(w *watch) {
	w.waiters--
	if k := w.req.key(); w.waiters == 0 && e.watches[k] == w {
		delete(e.watches, k)
	}
}

// notifyLocked fires the broadcast of every watched answer whose ETag the
// last change moved.
func (e *Emulator) notifyLocked() {
	for k, w := range e.watches {
		if e.gcpRenderLocked(w.req).etag != w.etag {
			close(w.ch)
			delete(e.watches, k)
		}
	}
}

// gcpRenderLocked answers q from the current state.
func (e *Emulator) gcpRenderLocked(q gcpReq) gcpAnswer {
	t := e.gcpTreeLocked()
	dir, slash := strings.CutSuffix(q.path, "/")
	a := gcpAnswer{status: http.StatusOK, ctype: "application/text"}
	switch l, isLeaf := t.leaves[q.path]; {
	case isLeaf && !slash:
		a.body = l.text
		if q.alt == "json" {
			a.body, a.ctype = gcpJSON(l.value, l.text), "application/json"
		}
	case strings.Contains(q.path, "//") || !t.isDir(dir):
		return gcpAnswer{status: http.StatusNotFound}
	case !slash && dir != "":
		return gcpAnswer{status: http.StatusMovedPermanently, location: gcpPrefix + dir + "/"}
	case q.recursive && q.alt == "text":
		a.body = gcpText(t, dir)
	case q.recursive:
		a.body, a.ctype = mustJSON(t.json(dir)), "application/json"
	case q.alt == "json":
		a.body, a.ctype = mustJSON(t.children(dir)), "application/json"
	default:
		for _, c := range t.children(dir) {
			a.body += c + "\n"
		}
	}
	h := fnv.New64a()
	h.Write([]byte(a.body))
	a.etag = fmt.Sprintf("%016x", h.Sum64())
	return a
}

// gcpJSON is a leaf with alt=json.
func gcpJSON(value any, text string) string {
	if value != nil {
		return mustJSON(value)
	}
	return mustJSON(text)
}

// gcpText is a directory with recursive=true&alt=text: one "path value"
// line per leaf below dir.
func gcpText(t tree, dir string) string {
	prefix := dir + "/"
	if dir == "" {
		prefix = ""
	}
	var lines []string
	for p, l := range t.leaves {
		if rest, ok := strings.CutPrefix(p, prefix); ok {
			lines = append(lines, rest+" "+l.text)
		}
	}
	sort.Strings(lines)
	if len(lines) == 0 {
		return ""
	}
	return strings.Join(lines, "\n") + "\n"
}

// gcpTreeLocked is /computeMetadata/v1/ as the notices now make it.
func (e *Emulator) gcpTreeLocked() tree {
	c := e.cfg
	spot := c.Lifecycle == Spot
	t := newTree()
	t.setJSON("instance/id", c.InstanceID, json.Number(c.InstanceID))
	t.set("instance/name", c.Name)
	t.set("instance/hostname", c.Name+"."+c.Zone+".c."+gcpProjectID+".internal")
	t.set("instance/zone", "projects/"+gcpProjectNum+"/zones/"+c.Zone)
	t.set("instance/machine-type", "projects/"+gcpProjectNum+"/machineTypes/"+c.InstanceType)
	t.set("instance/cpu-platform", "Intel Cascade Lake")
	t.setJSON("instance/tags", "[]", []string{})
	t.set("instance/network-interfaces/0/ip", gcpPrivateIP)
	t.set("instance/network-interfaces/0/network", "projects/"+gcpProjectNum+"/networks/default")
	t.set("instance/preempted", upper(len(e.visibleLocked(KindPreempt)) > 0))
	t.set("instance/maintenance-event", "NONE")
	if len(e.visibleLocked(KindMaintenance)) > 0 {
		t.set("instance/maintenance-event", "TERMINATE_ON_HOST_MAINTENANCE")
	}
	t.set("instance/scheduling/preemptible", upper(spot))
	t.set("instance/scheduling/automatic-restart", upper(!spot))
	t.set("instance/scheduling/on-host-maintenance", "TERMINATE")
	t.set("instance/scheduling/provisioning-model", map[bool]string{true: "SPOT", false: "STANDARD"}[spot])
	t.dirs["instance/attributes"] = true
	t.set("project/project-id", gcpProjectID)
	t.setJSON("project/numeric-project-id", gcpProjectNum, json.Number(gcpProjectNum))
	t.dirs["project/attributes"] = true
	return t
}

// upper is GCE's spelling of a boolean.
func upper(b bool) string {
	if b {
		return "TRUE"
	}
	return "FALSE"
}

// writeGCP sends a with its ETag.
func writeGCP(w http.ResponseWriter, a gcpAnswer) {
	if a.location != "" {
		w.Header().Set("Location", a.location)
	}
	if a.etag != "" {
		w.Header().Set("ETag", a.etag)
	}
	if a.ctype != "" {
		w.Header().Set("Content-Type", a.ctype)
	}
	w.WriteHeader(a.status)
	_, _ = w.Write([]byte(a.body))
}

// gcpError answers with the HTML page Google's front end gives.
func gcpError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=UTF-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error %d (%s)!!1</title>\n"+
		"  <p><b>%d.</b> <ins>That’s an error.</ins>\n  <p>%s  <ins>That’s all we know.</ins>\n</html>\n",
		status, http.StatusText(status), status, html.EscapeString(msg))
}
