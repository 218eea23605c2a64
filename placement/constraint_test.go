package placement

import "testing"

func TestSummarize(t *testing.T) {
	var one, many, none [refusalCount]int
	for r := refusedExcluded; r < refusalCount; r++ {
		one[r], many[r] = 1, 2
	}
	tests := []struct {
		name    string
		total   int
		refused [refusalCount]int
		want    string
	}{
		{"every reason once", 7, one, "7 nodes: 1 is excluded, 1 is not eligible (dead, doomed or draining), " +
			"1 is in an avoided zone, 1 is outside the allowed clouds, 1 lacks mode criu, 1 lacks memory, 1 lacks CPU"},
		{"every reason twice", 14, many, "14 nodes: 2 are excluded, 2 are not eligible (dead, doomed or draining), " +
			"2 are in an avoided zone, 2 are outside the allowed clouds, 2 lack mode criu, 2 lack memory, 2 lack CPU"},
		{"no nodes", 0, none, "0 nodes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := summarize(tt.total, tt.refused, "criu"); got != tt.want {
				t.Errorf("summarize =\n %q\nwant\n %q", got, tt.want)
			}
		})
	}
}
