package gormsession

// The Manager's background work: cleanup of expired sessions, retries of
// revocations the Backend refused, and coalesced activity writes.

import (
	"context"
	"errors"
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
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		for e := range sh.m.all() {
			if m.expired(e, now) {
				sh.m.del(e.id())
				m.users.remove(e)
				n++
				if e.expires == 0 || now < e.expires {
					idle = append(idle, e.id())
				}
			}
		}
		sh.mu.Unlock()
	}
	n += m.anon.sweep(func(e *entry) bool { return m.expired(e, now) })
	return n, idle
}

// replayRevocations applies the revocations found in the journal at start:
// in memory at once, and in the Backend if it accepts them now.
func (m *Manager) replayRevocations(ctx context.Context) {
	queued := m.pending.list()
	if len(queued) == 0 {
		return
	}
	var ids []string
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.RLock()
		for e := range sh.m.all() {
			s := e.session()
			if slices.ContainsFunc(queued, func(r revocation) bool { return r.covers(&s) }) {
				ids = append(ids, s.ID)
			}
		}
		sh.mu.RUnlock()
	}
	m.forget(ids...)
	if err := m.retryRevocations(ctx); err != nil {
		m.log.Warn("gormsession: journaled revocations not yet persisted", "pending", m.pending.len(), "err", err)
	}
}

// retryRevocations writes the queued revocations to the Backend again. A
// revocation leaves the queue (and the journal) only once it is persisted.
func (m *Manager) retryRevocations(ctx context.Context) error {
	var errs []error
	for _, r := range m.pending.list() {
		if err := m.apply(ctx, r); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := m.pending.done(r); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(append([]error{ErrNotPersisted}, errs...)...)
	}
	return nil
}

// pruneRevoked forgets the revoked IDs that no row read from now on can
// contradict: those whose revocation is persisted and older than the
// longest read the Manager may still apply.
func (m *Manager) pruneRevoked() {
	keep := revokedKeep
	if m.sync != nil {
		keep = max(keep, 4*(m.opts.SyncInterval+readThroughTimeout))
	}
	cutoff := m.now().Add(-keep).UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, at := range m.revoked {
		if at < cutoff && !m.pending.hasID(id) {
			delete(m.revoked, id)
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
