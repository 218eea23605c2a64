package emulate

import (
	"sort"
	"strings"
)

// tree is a metadata hierarchy as AWS and GCP serve it: leaves by
// slash-separated path ("meta-data/placement/region"); directories are the
// prefixes of leaves, plus those named in dirs (which may be empty, as
// GCP's instance/attributes/ is).
type tree struct {
	leaves map[string]leaf
	dirs   map[string]bool // path without its trailing slash
}

// leaf is one value: text as served, and value as a recursive JSON answer
// gives it (nil: the text as a JSON string).
type leaf struct {
	text  string
	value any
}

func newTree() tree { return tree{leaves: map[string]leaf{}, dirs: map[string]bool{}} }

// set adds a text leaf.
func (t tree) set(path, text string) { t.leaves[path] = leaf{text: text} }

// setJSON adds a leaf whose recursive form is value rather than a string.
func (t tree) setJSON(path, text string, value any) { t.leaves[path] = leaf{text: text, value: value} }

// isDir reports whether dir ("" for the root) holds anything or was named
// a directory.
func (t tree) isDir(dir string) bool {
	if dir == "" || t.dirs[dir] {
		return true
	}
	for p := range t.leaves {
		if strings.HasPrefix(p, dir+"/") {
			return true
		}
	}
	return false
}

// children lists dir's entries sorted, directories with a trailing slash.
func (t tree) children(dir string) []string {
	prefix := dir + "/"
	if dir == "" {
		prefix = ""
	}
	seen := map[string]bool{}
	add := func(p string) {
		rest, ok := strings.CutPrefix(p, prefix)
		if !ok || rest == "" {
			return
		}
		if head, _, sub := strings.Cut(rest, "/"); sub {
			seen[head+"/"] = true
		} else {
			seen[rest] = true
		}
	}
	for p := range t.leaves {
		add(p)
	}
	for d := range t.dirs {
		add(d + "/")
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// json is dir as GCP's ?recursive=true gives it: an object with camelCase
// keys, or an array where every key is an index.
func (t tree) json(dir string) any {
	prefix := dir + "/"
	if dir == "" {
		prefix = ""
	}
	obj := map[string]any{}
	for _, c := range t.children(dir) {
		name, isDir := strings.CutSuffix(c, "/")
		if isDir {
			obj[name] = t.json(prefix + name)
			continue
		}
		l := t.leaves[prefix+name]
		if l.value != nil {
			obj[name] = l.value
		} else {
			obj[name] = l.text
		}
	}
	if arr, ok := asArray(obj); ok {
		return arr
	}
	out := make(map[string]any, len(obj))
	for k, v := range obj {
		out[camel(k)] = v
	}
	return out
}

// asArray turns {"0": a, "1": b} into [a, b].
func asArray(obj map[string]any) ([]any, bool) {
	if len(obj) == 0 {
		return nil, false
	}
	arr := make([]any, len(obj))
	for k, v := range obj {
		i := 0
		for _, r := range k {
			if r < '0' || r > '9' {
				return nil, false
			}
			i = i*10 + int(r-'0')
		}
		if len(k) == 0 || len(k) > 4 || i >= len(arr) {
			return nil, false
		}
		arr[i] = v
	}
	return arr, true
}

// camel turns "maintenance-event" into "maintenanceEvent".
func camel(s string) string {
	parts := strings.Split(s, "-")
	for i := 1; i < len(parts); i++ {
		if parts[i] != "" {
			parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
		}
	}
	return strings.Join(parts, "")
}
