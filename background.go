package gormsession

// The Manager's background work: cleanup of expired sessions, retries of
// revocations the Backend refused, and coalesced activity writes.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// revokedKeep is the least time a revoked ID is remembered after its
// revocation reached the Backend, so that a row read before it (a slow
// change-feed poll, a read-through lookup) cannot bring it back.
const revokedKeep = time.Minute

// touch records activity on e at most once per TouchInterval, and queues e
// for the next coalesced write.
func (m *Manager) touch(e *entry, now int64) {
	last := e.updated.Load()
	if now-last < int64(m.opts.TouchInterval) || !e.updated.CompareAndSwap(last, now) {
		return
	}
	id := e.id()
	sh := m.shardOf(id)
	sh.dirtyMu.Lock()
	sh.dirty = append(sh.dirty, id)
	sh.dirtyMu.Unlock()
}

// Cleanup runs one pass of the background work now: it removes expired
// sessions from memory and from the Backend, retries queued revocations and
// writes recorded activity. It returns how many sessions it removed from
// memory. The Manager runs it periodically; tests and tools may call it.
func (m *Manager) Cleanup(ctx context.Context) (int, error) {
	m.pruneRevoked()
	n, idle := m.sweep()
	var errs []error
	for _, id := range idle {
		// An idle session's row is not expired by expires_at: end it by ID.
		// A restart would not load it either (it is idle), so it is not
		// journaled.
		if err := m.backend.Revoke(ctx, id); err != nil {
			errs = append(errs, err)
			break
		}
	}
	if er, ok := m.backend.(ExpiredRemover); ok {
		if _, err := er.RemoveExpired(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, m.retryRevocations(ctx), m.flushTouches(ctx))
	return n, errors.Join(errs...)
}

// sweep removes expired entries from memory. It returns how many it removed
// and the IDs of those that ended by idle timeout.
func (m *Manager) sweep() (int, []string) {
	now := m.now().UnixNano()
	n := 0
	var idle []string
	var expired []*entry
	for i := range m.shards {
		sh := &m.shards[i]
		// Found under the read lock, which lookups share; the write lock
		// is held only to delete what was found.
		expired = expired[:0]
		sh.mu.RLock()
		for e := range sh.m.all() {
			if m.expired(e, now) {
				expired = append(expired, e)
			}
		}
		sh.mu.RUnlock()
		if len(expired) == 0 {
			continue
		}
		sh.mu.Lock()
		for _, e := range expired {
			if sh.m.get(e.id()) != e {
				continue // replaced meanwhile by a newer version
			}
			sh.m.del(e.id())
			m.users.remove(e)
			n++
			if e.expires == 0 || now < e.expires {
				idle = append(idle, e.id())
			}
		}
		sh.mu.Unlock()
	}
	n += m.anon.sweep(func(e *entry) bool { return m.expired(e, now) })
	return n, idle
}

// replayRevocations queues the revocations found in the journal at start
// and applies them: in memory at once, and in the Backend if it accepts
// them now.
func (m *Manager) replayRevocations(ctx context.Context) {
	if len(m.pending.loaded) == 0 {
		return
	}
	m.mu.Lock()
	for _, rec := range m.pending.loaded {
		j := &job{seq: rec.seq}
		m.cl.seq = max(m.cl.seq, rec.seq)
		if rec.r.UserID == "" {
			j.id = rec.r.ID
			c := m.claim(rec.r.ID)
			c.revoked, c.job = true, j
			m.drop(rec.r.ID)
		} else {
			uc := &userClaim{r: rec.r, failed: true, job: j, blocked: make(map[string]struct{})}
			j.user = uc
			m.cl.users[rec.r.UserID] = append(m.cl.users[rec.r.UserID], uc)
			for _, id := range m.users.ids(rec.r.UserID) {
				if e := m.lookup(id); e != nil {
					if s := e.session(); uc.r.covers(&s) {
						uc.blocked[id] = struct{}{}
						m.drop(id)
					}
				}
			}
		}
		m.cl.jobs[j.seq] = j
		m.pending.n.Add(1)
	}
	m.pending.loaded = nil
	m.mu.Unlock()
	if err := m.retryRevocations(ctx); err != nil {
		m.log.Warn("gormsession: journaled revocations not yet persisted", "pending", m.pending.len(), "err", err)
	}
}

// retryRevocations writes the queued revocations to the Backend again,
// oldest first. A revocation leaves the queue (and the journal) only once
// it is persisted, or refused for good.
func (m *Manager) retryRevocations(ctx context.Context) error {
	m.mu.Lock()
	seqs := slices.Sorted(maps.Keys(m.cl.jobs))
	m.mu.Unlock()
	var errs []error
	for _, seq := range seqs {
		if err := m.retry(ctx, seq); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(append([]error{ErrNotPersisted}, errs...)...)
	}
	return nil
}

// retry writes the queued job seq, unless it is gone or being written.
func (m *Manager) retry(ctx context.Context, seq uint64) error {
	m.mu.Lock()
	j := m.cl.jobs[seq]
	if j == nil {
		m.mu.Unlock()
		return nil
	}
	// A user-wide write keeps what its claim keeps now, and holds that
	// session's rotation off until it is done (journal included).
	// Whether j is still queued and not being written is checked once
	// that wait is over, under the lock that then marks it busy.
	if err := m.waitFor(ctx, func() bool {
		k := j.rev().KeepID
		return k == "" || m.cl.ids[k] == nil || !m.cl.ids[k].rotating
	}); err != nil {
		m.mu.Unlock()
		return err
	}
	if m.cl.jobs[seq] != j || j.busy {
		m.mu.Unlock()
		return nil
	}
	r := j.rev()
	j.busy = true
	if r.KeepID != "" {
		m.claim(r.KeepID).keeps++
	}
	if j.user != nil {
		j.user.writing = true
	}
	m.mu.Unlock()

	removed, err := m.write(ctx, r)
	if err != nil && !permanent(err) {
		m.mu.Lock()
		j.busy = false
		if j.user != nil {
			j.user.writing = false
		}
		m.unkeep(r.KeepID)
		m.mu.Unlock()
		return err
	}
	var jerr error
	if m.pending.journal != nil {
		jerr = m.pending.journal.remove(seq)
	}
	done := func() {
		delete(m.cl.jobs, seq)
		m.pending.n.Add(-1)
		m.unkeep(r.KeepID)
	}
	if j.user != nil {
		m.settleUser(ctx, j.user, removed, err == nil, done)
	} else {
		m.mu.Lock()
		done()
		c := m.claim(r.ID)
		c.job = nil
		if c.writing == 0 {
			c.settled = m.now().UnixNano()
		}
		m.release(r.ID)
		m.mu.Unlock()
	}
	if err != nil {
		err = fmt.Errorf("gormsession: queued revocation dropped, the database refuses it for good: %w", err)
	}
	return errors.Join(err, jerr)
}

// pruneRevoked forgets the revoked IDs that no row read from now on can
// contradict: those whose revocation the Backend has had for longer than
// the longest read the Manager may still apply.
func (m *Manager) pruneRevoked() {
	keep := revokedKeep
	if m.sync != nil {
		keep = max(keep, 4*(m.opts.SyncInterval+readThroughTimeout))
	}
	cutoff := m.now().Add(-keep).UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, c := range m.cl.ids {
		if c.revoked && c.settled != 0 && c.settled < cutoff && c.writing == 0 && c.job == nil &&
			!c.creating && !c.rotating && c.keeps == 0 {
			delete(m.cl.ids, id)
		}
	}
}

// flushTouches writes the activity recorded since the last flush.
func (m *Manager) flushTouches(ctx context.Context) error {
	if m.opts.IdleTimeout <= 0 {
		return nil
	}
	var ids []string
	for i := range m.shards {
		sh := &m.shards[i]
		sh.dirtyMu.Lock()
		ids = append(ids, sh.dirty...)
		sh.dirty = nil
		sh.dirtyMu.Unlock()
	}
	if len(ids) == 0 {
		return nil
	}
	t, ok := m.backend.(Toucher)
	if !ok {
		return nil // activity stays in memory only
	}
	const batch = 500
	var errs []error
	for chunk := range slices.Chunk(ids, batch) {
		// The latest activity in the batch; every session in it was
		// active within TouchInterval of it.
		if err := t.Touch(ctx, chunk, m.clock()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// loop is the background goroutine: cleanup, retries and activity writes.
func (m *Manager) loop(ctx context.Context) {
	tick := m.opts.RetryInterval
	if m.opts.CleanupInterval > 0 {
		tick = min(tick, m.opts.CleanupInterval)
	}
	if m.opts.IdleTimeout > 0 {
		tick = min(tick, m.opts.TouchInterval)
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	lastCleanup := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if m.opts.CleanupInterval > 0 && time.Since(lastCleanup) >= m.opts.CleanupInterval {
			lastCleanup = time.Now()
			if _, err := m.Cleanup(ctx); err != nil && ctx.Err() == nil {
				m.log.Error("gormsession: cleanup", "err", err)
			}
			continue
		}
		m.pruneRevoked()
		if err := errors.Join(m.retryRevocations(ctx), m.flushTouches(ctx)); err != nil && ctx.Err() == nil {
			m.log.Error("gormsession: background write", "err", err)
		}
	}
}
