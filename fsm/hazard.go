package fsm

// hazardRecord appends an observed hazard, keeping the newest MaxHazards.
func (s *State) hazardRecord(c HazardRecord) error {
	if c.Hazard.Kind == "" {
		return invalid("hazard.kind", "must not be empty")
	}
	s.Hazards = keepLast(append(s.Hazards, c.Hazard), MaxHazards)
	return nil
}
