package emulate

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestTree(t *testing.T) {
	tr := newTree()
	tr.set("a/b-c", "1")
	tr.set("a/d/e", "2")
	tr.set("n/0/ip", "10.0.0.1")
	tr.set("n/1/ip", "10.0.0.2")
	tr.setJSON("num", "42", json.Number("42"))
	tr.dirs["empty"] = true

	if got := tr.children(""); !slices.Equal(got, []string{"a/", "empty/", "n/", "num"}) {
		t.Errorf("root children %v", got)
	}
	if got := tr.children("a"); !slices.Equal(got, []string{"b-c", "d/"}) {
		t.Errorf("a children %v", got)
	}
	if got := tr.children("empty"); len(got) != 0 {
		t.Errorf("empty children %v", got)
	}
	for dir, want := range map[string]bool{"": true, "a": true, "a/d": true, "empty": true, "a/b-c": false, "a/b": false, "nothing": false} {
		if got := tr.isDir(dir); got != want {
			t.Errorf("isDir(%q) = %v", dir, got)
		}
	}
	want := `{"a":{"bC":"1","d":{"e":"2"}},"empty":{},"n":[{"ip":"10.0.0.1"},{"ip":"10.0.0.2"}],"num":42}`
	if got := mustJSON(tr.json("")); got != want {
		t.Errorf("json:\n got %s\nwant %s", got, want)
	}
	for in, want := range map[string]string{"maintenance-event": "maintenanceEvent", "numeric-project-id": "numericProjectId", "id": "id", "a--b": "aB"} {
		if got := camel(in); got != want {
			t.Errorf("camel(%q) = %q, want %q", in, got, want)
		}
	}
}
