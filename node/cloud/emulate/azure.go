package emulate

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Azure IMDS.
const (
	azureEventsPath   = "/metadata/scheduledevents"
	azureInstancePath = "/metadata/instance"
	azureVersionsPath = "/metadata/versions"
	azureSubscription = "8d10da13-8125-4ba9-a717-bf7490507b3d"
	azureGroup        = "lifeboat"
	azureMoreInfo     = " For more information refer to aka.ms/azureimds"
)

// API versions each endpoint accepts, oldest first.
var (
	azureEventVersions    = []string{"2017-03-01", "2017-08-01", "2017-11-01", "2019-01-01", "2019-04-01", "2019-08-01", "2020-07-01"}
	azureInstanceVersions = []string{"2017-03-01", "2017-04-02", "2017-08-01", "2017-10-01", "2017-12-01", "2018-02-01",
		"2018-04-02", "2018-10-01", "2019-02-01", "2019-03-11", "2019-04-30", "2019-06-01", "2019-06-04", "2019-08-01",
		"2019-08-15", "2019-11-01", "2020-06-01", "2020-07-15", "2020-09-01", "2020-10-01", "2020-12-01", "2021-01-01",
		"2021-02-01", "2021-03-01", "2021-05-01", "2021-10-01", "2021-11-01", "2021-11-15", "2021-12-13", "2023-07-01"}
)

// azureEvent is one entry of the scheduled events document.
type azureEvent struct {
	EventID           string `json:"EventId"`
	EventStatus       string
	EventType         string
	ResourceType      string
	Resources         []string
	NotBefore         string
	Description       string
	EventSource       string
	DurationInSeconds int
}

// azureDoc is GET /metadata/scheduledevents.
type azureDoc struct {
	DocumentIncarnation int
	Events              []azureEvent
}

// azureTypes maps notice kinds to event types, sources and descriptions.
var azureTypes = map[string][3]string{
	KindPreempt:     {"Preempt", "Platform", "Virtual machine is being evicted from Azure Spot capacity."},
	KindMaintenance: {"Reboot", "Platform", "Host server is undergoing maintenance."},
	KindTerminate:   {"Terminate", "User", "Virtual machine is being deleted."},
}

func (e *Emulator) serveAzure(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimSuffix(r.URL.Path, "/")
	var versions []string
	switch {
	case r.Header.Get("X-Forwarded-For") != "":
		azureError(w, http.StatusBadRequest, "Bad request. Requests with an X-Forwarded-For header are not accepted.", nil)
		return
	case !strings.EqualFold(r.Header.Get("Metadata"), "true"):
		azureError(w, http.StatusBadRequest, "Bad request. Required metadata header not specified", nil)
		return
	case path == azureVersionsPath:
		e.azureOnlyGet(w, r, func() { writeJSON(w, http.StatusOK, map[string][]string{"apiVersions": azureInstanceVersions}) })
		return
	case path == azureEventsPath:
		versions = azureEventVersions
	case path == azureInstancePath || strings.HasPrefix(path, azureInstancePath+"/"):
		versions = azureInstanceVersions
	default:
		azureError(w, http.StatusNotFound, "Not found", nil)
		return
	}
	if !azureVersionOK(w, r.URL.Query(), versions) {
		return
	}
	if path != azureEventsPath {
		e.azureOnlyGet(w, r, func() { e.azureInstance(w, r, path) })
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		e.mu.Lock()
		doc := e.azureDocLocked()
		e.mu.Unlock()
		writeJSON(w, http.StatusOK, doc)
	case http.MethodPost:
		e.azureStart(w, r)
	default:
		w.Header().Set("Allow", "GET, POST")
		azureError(w, http.StatusMethodNotAllowed, "Method not allowed", nil)
	}
}

// azureOnlyGet runs serve for a GET and refuses other methods.
func (e *Emulator) azureOnlyGet(w http.ResponseWriter, r *http.Request, serve func()) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET")
		azureError(w, http.StatusMethodNotAllowed, "Method not allowed", nil)
		return
	}
	serve()
}

// azureVersionOK answers 400 (and reports false) without a supported
// api-version.
func azureVersionOK(w http.ResponseWriter, q map[string][]string, versions []string) bool {
	v, ok := q["api-version"]
	newest := slices.Clone(versions[len(versions)-3:])
	slices.Reverse(newest)
	switch {
	case !ok || len(v) == 0 || v[0] == "":
		azureError(w, http.StatusBadRequest, "Bad request. api-version was not specified in the request."+azureMoreInfo, newest)
		return false
	case !slices.Contains(versions, v[0]):
		azureError(w, http.StatusBadRequest, "Bad request. api-version is invalid or was not specified in the request."+azureMoreInfo, newest)
		return false
	}
	return true
}

// azureDocLocked is the scheduled events document now.
func (e *Emulator) azureDocLocked() azureDoc {
	doc := azureDoc{DocumentIncarnation: e.incarnation, Events: []azureEvent{}}
	for _, n := range e.notices {
		if !n.visible() {
			continue
		}
		t := azureTypes[n.kind]
		doc.Events = append(doc.Events, azureEvent{
			EventID: n.id, EventStatus: "Scheduled", EventType: t[0], ResourceType: "VirtualMachine",
			Resources: []string{e.cfg.Name}, NotBefore: n.deadline.Format(http.TimeFormat),
			Description: t[2], EventSource: t[1], DurationInSeconds: -1,
		})
	}
	return doc
}

// azureStart is POST {"StartRequests": [{"EventId": ...}]}: each named
// event is approved, recorded in Acks and leaves the document.
func (e *Emulator) azureStart(w http.ResponseWriter, r *http.Request) {
	var body struct {
		StartRequests []struct {
			EventID string `json:"EventId"`
		}
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, MaxNoticeBody))
	if err == nil {
		err = json.Unmarshal(data, &body)
	}
	if err != nil || body.StartRequests == nil {
		azureError(w, http.StatusBadRequest, `Bad request. Body must be {"StartRequests": [{"EventId": "..."}]}.`, nil)
		return
	}
	ids := make([]string, len(body.StartRequests))
	for i, s := range body.StartRequests {
		ids[i] = s.EventID
	}
	if err := e.ack(ids); err != nil {
		azureError(w, http.StatusBadRequest, "Bad request. "+err.Error(), nil)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// ack approves the events ids, all or none; approving an approved event
// again changes nothing.
func (e *Emulator) ack(ids []string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	var todo []*notice
	for _, id := range ids {
		i := slices.IndexFunc(e.notices, func(n *notice) bool { return n.id == id && n.active })
		if i < 0 {
			return fmt.Errorf("EventId %q is not a scheduled event", id)
		}
		if n := e.notices[i]; !n.acked && !slices.Contains(todo, n) {
			todo = append(todo, n)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	for _, n := range todo {
		n.acked = true
		e.acks = append(e.acks, n.id)
		e.log.Info("event started", "id", n.id, "kind", n.kind)
	}
	e.incarnation++
	e.notifyLocked()
	return nil
}

// azureInstance serves /metadata/instance and what is below it: JSON, or
// format=text for a leaf.
func (e *Emulator) azureInstance(w http.ResponseWriter, r *http.Request, path string) {
	format := r.URL.Query().Get("format")
	if format != "" && format != "json" && format != "text" {
		azureError(w, http.StatusBadRequest, "Bad request. format must be json or text.", nil)
		return
	}
	var node any = e.azureInstanceDoc()
	rest := strings.TrimPrefix(strings.TrimPrefix(path, azureInstancePath), "/")
	for seg := range strings.SplitSeq(rest, "/") {
		if seg == "" {
			continue
		}
		var ok bool
		if node, ok = azureChild(node, seg); !ok {
			azureError(w, http.StatusNotFound, "Not found", nil)
			return
		}
	}
	leaf, isLeaf := node.(string)
	switch {
	case isLeaf && format == "text":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(leaf))
	case isLeaf:
		azureError(w, http.StatusBadRequest, "Bad request. Querying a leaf node needs the parameter format=text.", nil)
	case format == "text":
		azureError(w, http.StatusBadRequest, "Bad request. format=text is only for leaf nodes.", nil)
	default:
		writeJSON(w, http.StatusOK, node)
	}
}

// azureChild steps into an object by key or an array by index.
func azureChild(node any, seg string) (any, bool) {
	switch n := node.(type) {
	case map[string]any:
		v, ok := n[seg]
		return v, ok
	case []any:
		i, err := strconv.Atoi(seg)
		if err != nil || i < 0 || i >= len(n) {
			return nil, false
		}
		return n[i], true
	}
	return nil, false
}

// azureInstanceDoc is /metadata/instance (api-version 2021-02-01 shape):
// every primitive a string, as IMDS gives them.
func (e *Emulator) azureInstanceDoc() map[string]any {
	c := e.cfg
	priority, eviction := "Regular", ""
	if c.Lifecycle == Spot {
		priority, eviction = "Spot", "Deallocate"
	}
	compute := map[string]any{
		"azEnvironment": "AzurePublicCloud", "evictionPolicy": eviction, "isHostCompatibilityLayerVm": "false",
		"licenseType": "", "location": c.Region, "name": c.Name, "offer": "0001-com-ubuntu-server-jammy",
		"osProfile": map[string]any{"adminUsername": "azureuser", "computerName": c.Name, "disablePasswordAuthentication": "true"},
		"osType":    "Linux", "placementGroupId": "", "plan": map[string]any{"name": "", "product": "", "publisher": ""},
		"platformFaultDomain": "0", "platformUpdateDomain": "0", "priority": priority, "provider": "Microsoft.Compute",
		"publicKeys": []any{}, "publisher": "Canonical", "resourceGroupName": azureGroup,
		"resourceId": "/subscriptions/" + azureSubscription + "/resourceGroups/" + azureGroup +
			"/providers/Microsoft.Compute/virtualMachines/" + c.Name,
		"securityProfile": map[string]any{"secureBootEnabled": "false", "virtualTpmEnabled": "false"},
		"sku":             "22_04-lts-gen2", "subscriptionId": azureSubscription, "tags": "", "tagsList": []any{},
		"userData": "", "version": "22.04.202401120", "vmId": c.InstanceID, "vmScaleSetName": "", "vmSize": c.InstanceType,
		"zone": c.Zone,
	}
	network := map[string]any{"interface": []any{map[string]any{
		"ipv4": map[string]any{
			"ipAddress": []any{map[string]any{"privateIpAddress": "10.0.0.4", "publicIpAddress": ""}},
			"subnet":    []any{map[string]any{"address": "10.0.0.0", "prefix": "24"}},
		},
		"ipv6":       map[string]any{"ipAddress": []any{}},
		"macAddress": "000D3A4F6E21",
	}}}
	return map[string]any{"compute": compute, "network": network}
}

// azureError answers with IMDS's error shape, and the newest versions
// when the api-version was the trouble.
func azureError(w http.ResponseWriter, status int, msg string, newest []string) {
	body := map[string]any{"error": msg}
	if newest != nil {
		body["newest-versions"] = newest
	}
	writeJSON(w, status, body)
}
