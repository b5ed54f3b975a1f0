package gormsession

// The Manager's background work: cleanup of expired sessions, retries of
// failed removals and coalesced activity writes.

import (
	"context"
	"errors"
	"slices"
	"time"
)

// touch records activity on e at most once per TouchInterval, and queues e
// for the next coalesced write.
func (m *Manager) touch(e *entry, now int64) {
	last := e.updated.Load()
	if now-last < int64(m.opts.TouchInterval) || !e.updated.CompareAndSwap(last, now) {
		return
	}
	sh := m.shardOf(e.id)
	sh.dirtyMu.Lock()
	sh.dirty = append(sh.dirty, e.id)
	sh.dirtyMu.Unlock()
}

// removeFromBackend deletes id from the Backend, or queues the delete for
// retry when the Backend fails.
func (m *Manager) removeFromBackend(ctx context.Context, id string) error {
	if err := m.backend.Remove(ctx, id); err != nil {
		m.queueRemove(id)
		return err
	}
	return nil
}

func (m *Manager) queueRemove(ids ...string) {
	m.pendingMu.Lock()
	for _, id := range ids {
		m.pendingRemoves[id] = struct{}{}
	}
	m.pendingMu.Unlock()
}

// removeEach deletes ids from the Backend one by one, queueing failures.
func (m *Manager) removeEach(ctx context.Context, ids []string) error {
	var errs []error
	for _, id := range ids {
		if err := m.removeFromBackend(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Cleanup runs one pass of the background work now: it removes expired
// sessions from memory and from the Backend, retries queued removals and
// writes recorded activity. It returns how many sessions it removed from
// memory. The Manager runs it periodically; tests and tools may call it.
func (m *Manager) Cleanup(ctx context.Context) (int, error) {
	n, idle := m.sweep()
	var errs []error
	if len(idle) > 0 {
		m.queueRemove(idle...)
	}
	if er, ok := m.backend.(ExpiredRemover); ok {
		if _, err := er.RemoveExpired(ctx, m.now()); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, m.retryRemoves(ctx), m.flushTouches(ctx))
	return n, errors.Join(errs...)
}

// sweep removes expired entries from memory. It returns how many it removed
// and the IDs of those that ended by idle timeout (their rows are not
// expired by expires_at, so they are deleted by ID).
func (m *Manager) sweep() (int, []string) {
	now := m.now().UnixNano()
	var gone []*entry
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		for id, e := range sh.m {
			if m.expired(e, now) {
				delete(sh.m, id)
				gone = append(gone, e)
			}
		}
		sh.mu.Unlock()
	}
	var idle []string
	for _, e := range gone {
		m.users.remove(e.user, e.id)
		if e.expires == 0 || now < e.expires {
			idle = append(idle, e.id)
		}
	}
	return len(gone), idle
}

// retryRemoves tries the queued Backend deletes again. An ID leaves the
// queue only once its delete has succeeded.
func (m *Manager) retryRemoves(ctx context.Context) error {
	m.pendingMu.Lock()
	ids := make([]string, 0, len(m.pendingRemoves))
	for id := range m.pendingRemoves {
		ids = append(ids, id)
	}
	m.pendingMu.Unlock()
	var errs []error
	for _, id := range ids {
		if err := m.backend.Remove(ctx, id); err != nil {
			errs = append(errs, err)
			continue
		}
		m.pendingMu.Lock()
		delete(m.pendingRemoves, id)
		m.pendingMu.Unlock()
	}
	return errors.Join(errs...)
}

// PendingRemovals returns how many Backend deletes are queued for retry.
func (m *Manager) PendingRemovals() int {
	m.pendingMu.Lock()
	defer m.pendingMu.Unlock()
	return len(m.pendingRemoves)
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
	if t, ok := m.backend.(Toucher); ok {
		const batch = 500
		var errs []error
		for chunk := range slices.Chunk(ids, batch) {
			// The latest activity in the batch; every session in it was
			// active within TouchInterval of it.
			at := m.clock()
			if err := t.Touch(ctx, chunk, at); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	var errs []error
	for _, id := range ids {
		if e := m.lookup(id); e != nil {
			s := e.session()
			if err := m.backend.Save(ctx, &s); err != nil {
				errs = append(errs, err)
			}
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
		if err := errors.Join(m.retryRemoves(ctx), m.flushTouches(ctx)); err != nil && ctx.Err() == nil {
			m.log.Error("gormsession: background write", "err", err)
		}
	}
}
