package model

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/lifeboat/lifeboat/jepsen/history"
)

// IncrValue is the value an ok incr appended to its workload's results
// log: "COUNT@TAG", with the count it answered and the tag it sent.
func IncrValue(op history.Op) string { return fmt.Sprintf("%d@%s", op.Value, op.Tag) }

// ParseValue splits a results-log value "COUNT@TAG" into its count and
// tag, and reports whether it had that form. The count is everything
// before the first "@", so a tag may itself contain "@".
func ParseValue(v string) (count int64, tag string, ok bool) {
	c, t, found := strings.Cut(v, "@")
	if !found {
		return 0, "", false
	}
	n, err := strconv.ParseInt(c, 10, 64)
	if err != nil {
		return 0, "", false
	}
	return n, t, true
}
