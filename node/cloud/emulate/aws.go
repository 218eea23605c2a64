package emulate

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// AWS IMDSv2, as EC2 serves it with HttpTokens=required.
const (
	awsTokenPath   = "/latest/api/token"
	awsTTLHeader   = "X-Aws-Ec2-Metadata-Token-Ttl-Seconds"
	awsTokenHeader = "X-Aws-Ec2-Metadata-Token"
	awsMaxTTL      = 21600
	awsTimeFormat  = "2006-01-02T15:04:05Z"
	// awsEventTime is how events/maintenance/scheduled writes times
	// ("21 Jan 2019 09:00:43 GMT": the day is not padded).
	awsEventTime = "2 Jan 2006 15:04:05 GMT"
	awsPrivateIP = "10.0.0.4"
)

// awsVersions is the listing of "/": the dated API versions and latest.
var awsVersions = []string{"1.0", "2007-01-19", "2007-03-01", "2008-02-01", "2009-04-04", "2011-01-01",
	"2012-01-12", "2014-02-25", "2016-09-02", "2018-09-24", "2021-07-15", "2022-09-24", "latest"}

func (e *Emulator) serveAWS(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == awsTokenPath {
		e.awsToken(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		awsError(w, http.StatusMethodNotAllowed)
		return
	}
	if !e.awsTokenValid(r.Header.Get(awsTokenHeader)) {
		awsError(w, http.StatusUnauthorized)
		return
	}
	body, ok := e.awsLookup(r.URL.Path)
	if !ok {
		awsError(w, http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write([]byte(body))
}

// awsToken is PUT /latest/api/token: a session token for TTL seconds
// (1-21600), refused to anything that came through a proxy.
func (e *Emulator) awsToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPut {
		w.Header().Set("Allow", "PUT")
		awsError(w, http.StatusMethodNotAllowed)
		return
	}
	if r.Header.Get("X-Forwarded-For") != "" {
		awsError(w, http.StatusForbidden)
		return
	}
	ttl, err := strconv.Atoi(r.Header.Get(awsTTLHeader))
	if err != nil || ttl < 1 || ttl > awsMaxTTL {
		awsError(w, http.StatusBadRequest)
		return
	}
	b := make([]byte, 42)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	token := base64.StdEncoding.EncodeToString(b)
	now := e.cfg.Now()
	e.mu.Lock()
	for t, exp := range e.tokens {
		if !now.Before(exp) {
			delete(e.tokens, t)
		}
	}
	e.tokens[token] = now.Add(time.Duration(ttl) * time.Second)
	e.tokensIssue++
	e.mu.Unlock()
	w.Header().Set(awsTTLHeader, strconv.Itoa(ttl))
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte(token))
}

// awsTokenValid reports whether token was issued and has not expired.
func (e *Emulator) awsTokenValid(token string) bool {
	if token == "" {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	exp, ok := e.tokens[token]
	return ok && e.cfg.Now().Before(exp)
}

// awsLookup answers a GET path: a value, or a directory's listing.
func (e *Emulator) awsLookup(path string) (string, bool) {
	switch path {
	case "/":
		return strings.Join(awsVersions, "\n"), true
	case "/latest", "/latest/":
		return "dynamic\nmeta-data", true
	}
	rest, ok := strings.CutPrefix(path, "/latest/")
	if !ok {
		return "", false
	}
	e.mu.Lock()
	t := e.awsTreeLocked()
	e.mu.Unlock()
	dir, slash := strings.CutSuffix(rest, "/")
	if l, ok := t.leaves[rest]; ok && !slash {
		return l.text, true
	}
	if strings.Contains(dir, "//") || !t.isDir(dir) || dir == "" {
		return "", false
	}
	return strings.Join(t.children(dir), "\n"), true
}

// awsTreeLocked is everything under /latest/ as the notices now make it.
func (e *Emulator) awsTreeLocked() tree {
	c := e.cfg
	t := newTree()
	host := "ip-" + strings.ReplaceAll(awsPrivateIP, ".", "-") + "." + c.Region + ".compute.internal"
	if c.Region == "us-east-1" {
		host = "ip-" + strings.ReplaceAll(awsPrivateIP, ".", "-") + ".ec2.internal"
	}
	for k, v := range map[string]string{
		"ami-id": "ami-0c7217cdde317cfec", "ami-launch-index": "0", "hostname": host, "local-hostname": host,
		"local-ipv4": awsPrivateIP, "mac": "0e:49:61:0f:c3:11", "instance-id": c.InstanceID,
		"instance-type": c.InstanceType, "instance-life-cycle": c.Lifecycle,
		"placement/availability-zone": c.Zone, "placement/region": c.Region,
		"events/maintenance/history":         "[]",
		"events/maintenance/scheduled":       e.awsMaintenanceLocked(),
		"autoscaling/target-lifecycle-state": "InService",
	} {
		t.set("meta-data/"+k, v)
	}
	if len(e.visibleLocked(KindTerminate)) > 0 {
		t.set("meta-data/autoscaling/target-lifecycle-state", "Terminated")
	}
	if ns := e.visibleLocked(KindPreempt); len(ns) > 0 {
		n := ns[len(ns)-1]
		t.set("meta-data/spot/instance-action", mustJSON(map[string]string{"action": "terminate", "time": n.deadline.Format(awsTimeFormat)}))
		t.set("meta-data/spot/termination-time", n.deadline.Format(awsTimeFormat))
	}
	if ns := e.visibleLocked(KindRebalance); len(ns) > 0 {
		t.set("meta-data/events/recommendations/rebalance", mustJSON(map[string]string{"noticeTime": ns[0].at.Format(awsTimeFormat)}))
	}
	t.set("dynamic/instance-identity/document", e.awsIdentityDocument())
	return t
}

// awsEvent is one entry of events/maintenance/scheduled.
type awsEvent struct {
	NotBefore   string
	Code        string
	Description string
	EventID     string `json:"EventId"`
	NotAfter    string
	State       string
}

// awsMaintenanceLocked is the scheduled-events list: one system-reboot
// per maintenance notice, its window opening at the notice's deadline.
func (e *Emulator) awsMaintenanceLocked() string {
	events := []awsEvent{}
	for _, n := range e.visibleLocked(KindMaintenance) {
		events = append(events, awsEvent{
			NotBefore: n.deadline.Format(awsEventTime), Code: "system-reboot", Description: "scheduled reboot",
			EventID: n.id, NotAfter: n.deadline.Add(2 * time.Hour).Format(awsEventTime), State: "active",
		})
	}
	b, _ := json.MarshalIndent(events, "", "  ") // plain strings: cannot fail
	return string(b)
}

// awsIdentityDocument is /latest/dynamic/instance-identity/document.
func (e *Emulator) awsIdentityDocument() string {
	c := e.cfg
	doc := map[string]any{
		"accountId": "123456789012", "architecture": "x86_64", "availabilityZone": c.Zone,
		"billingProducts": nil, "devpayProductCodes": nil, "marketplaceProductCodes": nil,
		"imageId": "ami-0c7217cdde317cfec", "instanceId": c.InstanceID, "instanceType": c.InstanceType,
		"kernelId": nil, "pendingTime": e.started.Format(awsTimeFormat), "privateIp": awsPrivateIP,
		"ramdiskId": nil, "region": c.Region, "version": "2017-09-30",
	}
	b, _ := json.MarshalIndent(doc, "", "  ") // strings and nils: cannot fail
	return string(b)
}

// awsError answers as IMDS does: an XHTML page naming the status.
func awsError(w http.ResponseWriter, status int) {
	title := fmt.Sprintf("%d - %s", status, http.StatusText(status))
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="iso-8859-1"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"
	"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">
 <head>
  <title>%s</title>
 </head>
 <body>
  <h1>%s</h1>
 </body>
</html>
`, title, title)
}

// mustJSON marshals values that cannot fail (maps of strings).
func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
