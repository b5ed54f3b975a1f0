package gormsession

// Revocations the Backend has not acknowledged yet: kept in memory, retried
// in the background, and optionally journaled to a local file so that they
// survive a restart of the process before the database is back.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// revocation is one revoking write the Backend has not acknowledged: of
// one session (ID), or of the sessions of a user created before Before
// except KeepID.
type revocation struct {
	ID     string `json:"id,omitempty"`
	UserID string `json:"user,omitempty"`
	KeepID string `json:"keep,omitempty"`
	Before int64  `json:"before,omitempty"` // unix nanoseconds
}

// covers reports whether r revokes s.
func (r revocation) covers(s *Session) bool {
	if r.UserID == "" {
		return r.ID == s.ID
	}
	return r.UserID == s.UserID && s.ID != r.KeepID && s.CreatedAt.UnixNano() < r.Before
}

// journalLine is one line of the journal: a revocation, or the record that
// session Rotated was rotated into To, which moves to To the keeping of the
// user-wide revocations queued before it (see rekeep).
type journalLine struct {
	revocation
	Rotated string `json:"rotated,omitempty"`
	To      string `json:"to,omitempty"`
}

// pendingRevocations is the set of unacknowledged revocations, mirrored in
// the journal file when there is one.
type pendingRevocations struct {
	mu      sync.Mutex
	set     map[revocation]struct{}
	journal *os.File // nil without ManagerOptions.Journal
}

// openJournal opens (creating it if needed) the journal at path and reads
// the revocations it holds. A torn last line, left by a crash during a
// write, is ignored.
func openJournal(path string) (*pendingRevocations, error) {
	p := &pendingRevocations{set: make(map[revocation]struct{})}
	if path == "" {
		return p, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("gormsession: open journal: %w", err)
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l journalLine
		if line := bytes.TrimSpace(sc.Bytes()); len(line) == 0 || json.Unmarshal(line, &l) != nil {
			continue
		}
		switch {
		case l.Rotated != "" && l.To != "":
			p.moveKeep(l.Rotated, l.To)
		case l.ID != "" || l.UserID != "":
			p.set[l.revocation] = struct{}{}
		}
	}
	if err := sc.Err(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("gormsession: read journal: %w", err)
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("gormsession: open journal: %w", err)
	}
	p.journal = f
	return p, nil
}

// add queues r and, with a journal, appends it and syncs the file before
// returning. The error is that of the journal write; r is queued anyway.
func (p *pendingRevocations) add(r revocation) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.set[r]; ok {
		return nil
	}
	p.set[r] = struct{}{}
	return p.append(journalLine{revocation: r})
}

// rekeep records that session from was rotated into session to: the
// user-wide revocations queued to keep from keep to instead, since the
// user kept that device. (A rotation keeps the creation time, so a
// revocation still keyed to from would end to when it lands.) With a
// journal, the record is appended and synced, and replayed in order.
func (p *pendingRevocations) rekeep(from, to string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.moveKeep(from, to) {
		return nil
	}
	return p.append(journalLine{Rotated: from, To: to})
}

// moveKeep makes the queued revocations that keep from keep to, and
// reports whether there were any. p.mu is held.
func (p *pendingRevocations) moveKeep(from, to string) bool {
	var moved []revocation
	for r := range p.set {
		if r.UserID != "" && r.KeepID == from {
			moved = append(moved, r)
		}
	}
	for _, r := range moved {
		delete(p.set, r)
		r.KeepID = to
		p.set[r] = struct{}{}
	}
	return len(moved) > 0
}

// append writes l to the journal, if there is one, and syncs it. p.mu is
// held.
func (p *pendingRevocations) append(l journalLine) error {
	if p.journal == nil {
		return nil
	}
	line, _ := json.Marshal(l)
	if _, err := p.journal.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("gormsession: journal: %w", err)
	}
	if err := p.journal.Sync(); err != nil {
		return fmt.Errorf("gormsession: journal: %w", err)
	}
	return nil
}

// done removes r from the queue; the journal is emptied once nothing is
// left in it.
func (p *pendingRevocations) done(r revocation) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.set, r)
	if len(p.set) > 0 || p.journal == nil {
		return nil
	}
	if err := p.journal.Truncate(0); err != nil {
		return fmt.Errorf("gormsession: journal: %w", err)
	}
	if _, err := p.journal.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("gormsession: journal: %w", err)
	}
	return p.journal.Sync()
}

// list returns the queued revocations.
func (p *pendingRevocations) list() []revocation {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]revocation, 0, len(p.set))
	for r := range p.set {
		out = append(out, r)
	}
	return out
}

// len returns how many revocations are queued.
func (p *pendingRevocations) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.set)
}

// hasID reports whether the revocation of session id is queued.
func (p *pendingRevocations) hasID(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.set[revocation{ID: id}]
	return ok
}

// covers reports whether a queued revocation revokes s.
func (p *pendingRevocations) covers(s *Session) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for r := range p.set {
		if r.covers(s) {
			return true
		}
	}
	return false
}

// close closes the journal file.
func (p *pendingRevocations) close() error {
	if p.journal == nil {
		return nil
	}
	return p.journal.Close()
}

// notPersisted wraps err, the Backend's refusal of a revocation, with
// ErrNotPersisted, and with the journal's error if that failed too.
func notPersisted(err, journalErr error) error {
	return errors.Join(fmt.Errorf("%w: %w", ErrNotPersisted, err), journalErr)
}
