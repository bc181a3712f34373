package main

import (
	"encoding/gob"
	"fmt"
	"os"
	"time"
)

// A snapshot is what a run measured, saved with -save and rendered again
// with -render, so that the report can be rewritten (for example after
// editing analysis.md) without measuring again.
type snapshot struct {
	Args    []string                        // the command line, which determines the options
	RunID   string                          // names the run's keys and sessions
	Machine machine                         // where it ran
	Runs    map[string]map[string][]metrics // suite.runs
	Pairs   map[string]map[string][]pairRun // suite.pairs
	Notes   []string                        // suite.notes
	Took    time.Duration                   // how long the measurements took
}

// save writes the suite's results to path.
func (s *suite) save(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	snap := snapshot{Args: s.o.args, RunID: s.runID, Machine: s.machine, Runs: s.runs, Pairs: s.pairs, Notes: s.notes, Took: s.took}
	if err := gob.NewEncoder(f).Encode(snap); err != nil {
		f.Close()
		return fmt.Errorf("save %s: %w", path, err)
	}
	return f.Close()
}

// loadSuite returns a suite holding the results saved in path, with the
// options of the run that measured them, except where to write.
func loadSuite(path string, o *options) (*suite, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var snap snapshot
	if err := gob.NewDecoder(f).Decode(&snap); err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	saved, err := parseOptions(snap.Args, os.Stderr)
	if err != nil {
		return nil, fmt.Errorf("options saved in %s: %w", path, err)
	}
	saved.out, saved.svg = o.out, o.svg
	return &suite{o: saved, runID: snap.RunID, machine: snap.Machine, runs: snap.Runs, pairs: snap.Pairs, notes: snap.Notes,
		took: snap.Took, stderr: os.Stderr}, nil
}
