package fsm

// resultAppend appends to the fenced results log under the current epoch
// only, keeping the newest MaxResults. The Result is returned.
func (s *State) resultAppend(index uint64, c ResultAppend) (any, error) {
	w, err := s.workload(c.Workload)
	if err != nil {
		return nil, err
	}
	if err := w.checkEpoch(c.Epoch); err != nil {
		return nil, err
	}
	r := Result{Index: index, Epoch: c.Epoch, Value: c.Value, At: c.At}
	w.Results = keepLast(append(w.Results, r), MaxResults)
	return r, nil
}
