package gormsession_test

// Crash injection for the revocation journal: a sequence of revocations,
// a rotation and a landing is recorded, the file is snapshotted after
// each, and every write between two snapshots is cut at every byte (a
// crash) or every byte of the result is damaged (a flipped byte).

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gormsession/gormsession"
)

// crashDir returns a directory for the many files the crash tests write:
// in memory when the machine has /dev/shm, since each open syncs.
func crashDir(t *testing.T) string {
	t.Helper()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		dir, err := os.MkdirTemp("/dev/shm", "gormsession-crash-")
		if err == nil {
			t.Cleanup(func() { _ = os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

// metaTxid returns the transaction ID a bbolt meta page (page 0 or 1 of
// 4 KiB) holds: the 8 bytes after the page header (16 bytes), the magic,
// version, page size and flags (16), the root bucket (16), the freelist
// and the high-water mark (16).
func metaTxid(file []byte, page int) uint64 {
	off := page*4096 + 64
	if len(file) < off+8 {
		return 0
	}
	return binary.LittleEndian.Uint64(file[off:])
}

// commitOrder returns the offsets where after differs from before in the
// order bbolt writes them. Each change is two transactions: the change's
// (its data pages and free list, synced, then its meta page) and the
// seal's (a new free list page, synced, then the other meta page). So:
// the data pages but the seal's free list, in page order; the meta page of
// the lower transaction ID; the seal's free list; the other meta page.
func commitOrder(before, after []byte) []int {
	const page = 4096
	low, high := 0, 1
	if metaTxid(after, 1) < metaTxid(after, 0) {
		low, high = 1, 0
	}
	// The free list the seal wrote: the one the higher meta page names.
	fl := int(binary.LittleEndian.Uint64(after[high*page+48:]))
	sealFrom, sealTo := fl*page, fl*page
	if fl*page+16 <= len(after) {
		sealTo = fl*page + (int(binary.LittleEndian.Uint32(after[fl*page+12:]))+1)*page
	}
	var data, seal, metaLow, metaHigh []int
	for _, off := range diffOrder(before, after) {
		switch {
		case off/page == low:
			metaLow = append(metaLow, off)
		case off/page == high:
			metaHigh = append(metaHigh, off)
		case off >= sealFrom && off < sealTo:
			seal = append(seal, off)
		default:
			data = append(data, off)
		}
	}
	slices.Sort(data)
	slices.Sort(seal)
	return slices.Concat(data, metaLow, seal, metaHigh)
}

// applyPrefix returns before with the first k offsets of order taken from
// after.
func applyPrefix(before, after []byte, order []int, k int) []byte {
	out := make([]byte, len(after))
	copy(out, before)
	for _, off := range order[:k] {
		out[off] = after[off]
	}
	return out
}

// crashStep is one operation of the recorded sequence and the journal file
// after it.
type crashStep struct {
	name  string
	file  []byte
	state []string
}

// crashScenario is the sessions of the recorded sequence and what it did.
type crashScenario struct {
	f                             *faultyBackend
	opts                          gormsession.ManagerOptions
	a, kept, other, b, bob, carol gormsession.Session
	rotated                       gormsession.Session
	steps                         []crashStep
}

// recordCrashScenario runs the sequence with revocations refused by the
// database, so that they stay in the journal, and snapshots the journal
// after each step.
func recordCrashScenario(t *testing.T) *crashScenario {
	t.Helper()
	ctx := context.Background()
	tdb := newSQLite(t)
	sc := &crashScenario{f: newFaulty(newStore(t, tdb, nil)), opts: journalOpts(t)}
	sc.opts.Journal = filepath.Join(crashDir(t), "recorded.journal")
	m, err := gormsession.NewManager(ctx, sc.f, sc.opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = m.Close() }()
	sc.a = create(t, m, gormsession.Attributes{UserID: "alice"})
	sc.kept = create(t, m, gormsession.Attributes{UserID: "alice"})
	sc.other = create(t, m, gormsession.Attributes{UserID: "alice"})
	sc.b = create(t, m, gormsession.Attributes{UserID: "carol"})
	sc.bob = create(t, m, gormsession.Attributes{UserID: "bob"})
	sc.carol = create(t, m, gormsession.Attributes{UserID: "carol"})
	snap := func(name string) {
		file := readFile(t, sc.opts.Journal)
		sc.steps = append(sc.steps, crashStep{name: name, file: file})
	}
	snap("empty")
	sc.f.fail("Revoke", true)
	sc.f.fail("RevokeUser", true)
	notPersisted := func(err error) {
		t.Helper()
		if !errors.Is(err, gormsession.ErrNotPersisted) {
			t.Fatalf("want ErrNotPersisted, got %v", err)
		}
	}
	notPersisted(m.Revoke(ctx, sc.a.ID))
	snap("revoke a")
	_, err = m.RevokeOthers(ctx, "alice", sc.kept.ID)
	notPersisted(err)
	snap("revoke alice's others")
	if sc.rotated, err = m.Rotate(ctx, sc.kept.Token); err != nil {
		t.Fatal(err)
	}
	snap("rotate the kept device")
	sc.f.fail("Revoke", false)
	if _, err := m.Cleanup(ctx); err == nil {
		t.Fatal("Cleanup wrote a user-wide revocation the database refuses")
	}
	snap("the revocation of a lands")
	sc.f.fail("Revoke", true)
	notPersisted(m.Revoke(ctx, sc.b.ID))
	snap("revoke b")
	_, err = m.RevokeUser(ctx, "bob")
	notPersisted(err)
	snap("revoke bob")
	if err := m.Close(); !errors.Is(err, gormsession.ErrNotPersisted) {
		t.Fatalf("Close = %v, want ErrNotPersisted", err)
	}
	for i := range sc.steps {
		path := filepath.Join(filepath.Dir(sc.opts.Journal), "state.journal")
		if err := os.WriteFile(path, sc.steps[i].file, 0o600); err != nil {
			t.Fatal(err)
		}
		if sc.steps[i].state, err = gormsession.JournalState(path); err != nil {
			t.Fatalf("the journal after %q: %v", sc.steps[i].name, err)
		}
	}
	return sc
}

// checkManager opens a Manager on the journal at path, with revocations
// still refused by the database, and checks that every revocation
// acknowledged by step acked (an index of sc.steps) holds and that nothing
// else was ended.
func (sc *crashScenario) checkManager(t *testing.T, path string, acked int) {
	t.Helper()
	opts := sc.opts
	opts.Journal = path
	m, err := gormsession.NewManager(context.Background(), sc.f, opts)
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	defer func() { _ = m.Close() }()
	refused := map[string]int{"a": 1, "other": 2, "b": 5, "bob": 6}
	for name, s := range map[string]gormsession.Session{"a": sc.a, "other": sc.other, "b": sc.b, "bob": sc.bob} {
		if refused[name] <= acked {
			if _, ok := m.Resolve(context.Background(), s.Token); ok {
				t.Fatalf("%s resolves, but its revocation was acknowledged before the crash", name)
			}
		}
	}
	if _, ok := m.Resolve(context.Background(), sc.carol.Token); !ok {
		t.Fatal("carol's session, never revoked, does not resolve")
	}
	if acked >= 3 {
		if _, ok := m.Resolve(context.Background(), sc.rotated.Token); !ok {
			t.Fatal("the kept device's successor, rotated before the crash, does not resolve")
		}
	}
}

// TestJournalSurvivesACrashAtEveryByte cuts every write of the recorded
// sequence at every byte, in the order bbolt writes them, and opens the
// result: the journal must read as it was before the write or as it is
// after it, never fail, and a Manager on it must keep every revocation
// acknowledged before the cut and end nothing else.
func TestJournalSurvivesACrashAtEveryByte(t *testing.T) {
	sc := recordCrashScenario(t)
	dir := crashDir(t)
	path := filepath.Join(dir, "cut.journal")
	cuts := 0
	for i := 1; i < len(sc.steps); i++ {
		before, after := sc.steps[i-1], sc.steps[i]
		order := commitOrder(before.file, after.file)
		for k := 0; k <= len(order); k++ {
			cuts++
			if err := os.WriteFile(path, applyPrefix(before.file, after.file, order, k), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := gormsession.JournalState(path)
			if err != nil {
				t.Fatalf("%q cut after %d of %d bytes: %v", after.name, k, len(order), err)
			}
			switch {
			case slices.Equal(got, before.state):
			case slices.Equal(got, after.state):
			default:
				t.Fatalf("%q cut after %d of %d bytes reads\n%q\nwant the state before,\n%q\nor after,\n%q", after.name, k, len(order), got, before.state, after.state)
			}
			// A Manager on it: on every cut of the meta pages and of
			// the first and last data bytes, and on every 16th other.
			if k == 0 || k >= len(order)-1 || order[k-1] < 2*4096 || k%16 == 0 {
				if err := os.WriteFile(path, applyPrefix(before.file, after.file, order, k), 0o600); err != nil {
					t.Fatal(err)
				}
				t.Run(fmt.Sprintf("%s/cut %d of %d", after.name, k, len(order)), func(t *testing.T) {
					sc.checkManager(t, path, i-1)
				})
			}
		}
	}
	t.Logf("%d cuts over %d writes", cuts, len(sc.steps)-1)
}

// TestJournalRefusesOrReadsADamagedFile flips bytes of the journal as the
// recorded sequence left it, one at a time: opening it must either read
// exactly what it holds or fail with an error that names the file; never
// panic, never drop a record silently. Flipped: every byte that is not
// zero, the first 128 bytes of every page (headers, meta pages, element
// tables), and every 8th of the other zero bytes (unused space).
func TestJournalRefusesOrReadsADamagedFile(t *testing.T) {
	sc := recordCrashScenario(t)
	last := sc.steps[len(sc.steps)-1]
	path := filepath.Join(crashDir(t), "damaged.journal")
	refused, read, flipped := 0, 0, 0
	for off := range last.file {
		if last.file[off] == 0 && off%4096 >= 128 && off%8 != 0 {
			continue
		}
		flipped++
		damaged := slices.Clone(last.file)
		damaged[off] ^= 0xff
		if err := os.WriteFile(path, damaged, 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := gormsession.JournalState(path)
		switch {
		case err != nil:
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("byte %d flipped: the error does not name the file: %v", off, err)
			}
			refused++
		case !slices.Equal(got, last.state):
			t.Fatalf("byte %d flipped: reads\n%q\nwant\n%q", off, got, last.state)
		default:
			read++
		}
	}
	t.Logf("%d of %d bytes flipped one at a time: %d read correctly, %d refused", flipped, len(last.file), read, refused)
	// And a Manager refuses to start on a damaged file rather than lose a
	// revocation: here the summary's page.
	damaged := slices.Clone(last.file)
	for off := 2 * 4096; off < len(damaged); off++ {
		damaged[off] ^= 0xff
	}
	if err := os.WriteFile(path, damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	opts := sc.opts
	opts.Journal = path
	if m, err := gormsession.NewManager(context.Background(), sc.f, opts); err == nil {
		_ = m.Close()
		t.Fatal("NewManager started on a journal whose data pages are all damaged")
	} else if !strings.Contains(err.Error(), path) {
		t.Fatalf("NewManager's error does not name the file: %v", err)
	}
}
