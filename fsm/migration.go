package fsm

import "fmt"

// phases are the known migration phases.
var phases = map[string]bool{
	PhasePlanned:       true,
	PhaseCheckpointing: true,
	PhaseTransferring:  true,
	PhaseRestoring:     true,
	PhaseCutover:       true,
	PhaseDone:          true,
	PhaseFailed:        true,
	PhaseRolledBack:    true,
}

func validatePhase(p string) error {
	if !phases[p] {
		return invalid("phase", "%q is not a migration phase", p)
	}
	return nil
}

// migration returns the kept migration with this id, or nil.
func (s *State) migration(id string) *Migration {
	for _, m := range s.Migrations {
		if m.ID == id {
			return m
		}
	}
	return nil
}

// migrationBegin records a new migration in phase planned (or the phase
// given), with Phases holding just that phase at At. Only the newest
// MaxMigrations records are kept.
func (s *State) migrationBegin(c MigrationBegin) error {
	m := cloneMigration(&c.Migration)
	if m.ID == "" {
		return invalid("migration.id", "must not be empty")
	}
	if m.Phase == "" {
		m.Phase = PhasePlanned
	}
	if err := validatePhase(m.Phase); err != nil {
		return err
	}
	if s.migration(m.ID) != nil {
		return fmt.Errorf("%w: migration %q", ErrExists, m.ID)
	}
	m.Phases = []PhaseTime{{Phase: m.Phase, At: c.At}}
	s.Migrations = keepLast(append(s.Migrations, &m), MaxMigrations)
	return nil
}

// migrationPhase moves a migration to a phase. A non-zero Epoch and a
// non-empty Error are recorded; zero values leave the old ones.
func (s *State) migrationPhase(c MigrationPhase) error {
	if err := validatePhase(c.Phase); err != nil {
		return err
	}
	m := s.migration(c.ID)
	if m == nil {
		return fmt.Errorf("%w: migration %q", ErrNotFound, c.ID)
	}
	m.Phase = c.Phase
	m.Phases = append(m.Phases, PhaseTime{Phase: c.Phase, At: c.At})
	if c.Epoch != 0 {
		m.Epoch = c.Epoch
	}
	if c.Error != "" {
		m.Error = c.Error
	}
	return nil
}
