package fsm

// resultAppend appends to the fenced results log under the current epoch
// only, then trims it (trimResults). The Result is returned.
func (s *State) resultAppend(index uint64, c ResultAppend) (any, error) {
	w, err := s.workload(c.Workload)
	if err != nil {
		return nil, err
	}
	if err := w.checkEpoch(c.Epoch); err != nil {
		return nil, err
	}
	r := Result{Index: index, Epoch: c.Epoch, Value: c.Value, At: c.At}
	w.Results = append(w.Results, r)
	w.trimResults(c.KeepBytes)
	return r, nil
}

// trimResults drops the oldest results until at most MaxResults remain
// and, when keepBytes > 0, their values total at most keepBytes. The
// newest result always stays, so the log of a workload that ever
// appended is never empty. What it drops moves the trim point.
func (w *Workload) trimResults(keepBytes int64) {
	drop := max(0, len(w.Results)-MaxResults)
	if keepBytes > 0 {
		var total int64
		for _, r := range w.Results[drop:] {
			total += int64(len(r.Value))
		}
		for ; total > keepBytes && drop < len(w.Results)-1; drop++ {
			total -= int64(len(w.Results[drop].Value))
		}
	}
	if drop == 0 {
		return
	}
	w.ResultsTrimmed += uint64(drop)
	w.ResultsTrimmedThrough = max(w.ResultsTrimmedThrough, w.Results[drop-1].Index)
	w.Results = keepLast(w.Results, len(w.Results)-drop)
}

// ResultsLog is a workload's fenced results log as a read returns it: the
// entries kept, oldest first, and what was trimmed before them.
type ResultsLog struct {
	// Trimmed is how many entries were ever trimmed from the front.
	Trimmed uint64 `json:"trimmed"`
	// TrimmedThrough is the Raft index of the newest trimmed entry (0:
	// none). Every entry at or below it is gone; every entry above it is
	// in Results.
	TrimmedThrough uint64   `json:"trimmed_through"`
	Results        []Result `json:"results"`
}

// ResultsLog returns w's results log with its trim point. It shares
// w.Results.
func (w *Workload) ResultsLog() ResultsLog {
	return ResultsLog{Trimmed: w.ResultsTrimmed, TrimmedThrough: w.ResultsTrimmedThrough, Results: w.Results}
}
