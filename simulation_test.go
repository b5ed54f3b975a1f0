package gormsession_test

// TestSimulation checks the consistency model under random operations from
// several goroutines on three Managers sharing one database, with injected
// outages, failed writes, lost replies, restarts, clocks that disagree,
// commits held back by other transactions and partitions longer than the
// tombstones are kept.
//
// The invariants:
//
//	I1  a revoked token never resolves again: on the revoking instance at
//	    once, on the others once they synced after the revocation
//	I2  after quiescence every instance's memory equals the live rows
//	I3  an acknowledged write survives, restarts included
//	I4  a rotation has at most one successor
//	I5  queued revocations reach the database once it is back
//	I6  a change whose commit waited on another transaction is applied by
//	    every instance that syncs after it committed, however long it
//	    waited within the tombstones' lifetime less a poll
//	I7  I1 to I6 hold with every instance's clock off by up to ten minutes
//	    from the others' and the database's
//	I8  an instance cut off for longer than tombstones are kept reloads
//	    on its next successful read, and then holds I1 and I2
//
// Each seed fixes the sequence of operations every worker draws, the
// faults each instance injects and the instances' clocks; the interleaving
// of the workers is left to the scheduler, so a seed replays the same
// workload, not the same schedule. A failure prints the seed and the
// operation log. A plain go test runs seed 1; CI runs fixed seeds
// (GORMSESSION_SIM_SEED=1,2,3 in .ci/run); GORMSESSION_SIM_SEED=random
// draws one and prints it to stderr, which a passing run shows too when
// go test is run in the package's directory without a package argument
// (with one, go test hides a passing package's output unless -v):
//
//	GORMSESSION_SIM_SEED=7 GORMSESSION_SIM_OPS=2000 go test -run TestSimulation .
//	GORMSESSION_SIM_SEED=random go test -run TestSimulation

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gormsession/gormsession"
)

const (
	simInstances = 3
	simWorkers   = 3
	simPhases    = 3
	simUsers     = 4
	// simTombstoneTTL is how long the simulation's Stores keep tombstones:
	// short, so that partitions outlast it, and longer than simHold plus
	// a few polls. A tombstone's age counts from its statement's start,
	// which on PostgreSQL and MySQL comes before a wait for a row lock:
	// a commit held back for longer than the TTL less a poll may be
	// cleaned up before another instance reads it (see I6).
	simTombstoneTTL = 4 * time.Second
	// simHold is how long a held-back commit waits: longer than the
	// overlap an earlier change feed read back (2 seconds).
	simHold = 2200 * time.Millisecond
)

// simSkews are the clock offsets an instance may draw.
var simSkews = []time.Duration{0, 0, 30 * time.Second, -30 * time.Second, 10 * time.Minute, -10 * time.Minute}

// simSeeds returns the seeds in GORMSESSION_SIM_SEED (a comma-separated
// list, or "random" for one drawn now and printed), or seed 1. CI runs the
// seeds .ci/run names.
func simSeeds(t *testing.T) []uint64 {
	v := os.Getenv("GORMSESSION_SIM_SEED")
	switch v {
	case "":
		return []uint64{1}
	case "random":
		// On stderr, not t.Log: a passing run shows it too.
		seed := rand.Uint64()
		fmt.Fprintf(os.Stderr, "TestSimulation: GORMSESSION_SIM_SEED=%d\n", seed)
		return []uint64{seed}
	}
	var seeds []uint64
	for _, f := range strings.Split(v, ",") {
		seed, err := strconv.ParseUint(strings.TrimSpace(f), 10, 64)
		if err != nil {
			t.Fatalf("GORMSESSION_SIM_SEED: %v", err)
		}
		seeds = append(seeds, seed)
	}
	return seeds
}

// simOps returns GORMSESSION_SIM_OPS, the operations per seed, or 240.
func simOps(t *testing.T) int {
	if v := os.Getenv("GORMSESSION_SIM_OPS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("GORMSESSION_SIM_OPS: %q is not a positive number", v)
		}
		return n
	}
	return 240
}

func TestSimulation(t *testing.T) {
	ops := simOps(t)
	for _, seed := range simSeeds(t) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			eachDB(t, func(t *testing.T, tdb testDB) {
				s := newSim(t, tdb, seed)
				defer s.closeAll()
				s.run(ops)
			})
		})
	}
}

// sim is one simulation run: the instances, and the model of what the
// operations acknowledged, against which the invariants are checked.
type sim struct {
	t     *testing.T
	tdb   testDB
	seed  uint64
	dir   string
	insts [simInstances]*simInstance
	seq   atomic.Int64 // advanced at the start and end of every operation

	holds sync.WaitGroup // commits held back, released by quiesce at the latest

	mu     sync.Mutex // guards what follows
	log    []string
	tokens []*simToken
	users  [simUsers]simUser
	failed bool
}

// simInstance is one application instance; restart swaps its Manager.
type simInstance struct {
	idx      int
	rw       sync.RWMutex // operations read-lock it, a restart write-locks it
	m        *gormsession.Manager
	f        *faultyBackend
	journal  string
	syncedAt atomic.Int64  // seq at which its last successful sync or load began
	skew     time.Duration // how far its clock is off the database's
}

// simUser tracks the user-wide revocations of one user.
type simUser struct {
	inFlight    int   // RevokeUser/RevokeOthers calls under way
	lastStarted int64 // seq at which the last one began
	// refused counts the calls the database refused (ErrNotPersisted):
	// their retry ends every session of the user created before the call,
	// the successors of rotations among them too, the kept one's included.
	refused int
	// refusedAt is when the last refused call returned. Its retry is cut
	// off by the database's clock as the instance knew it, which is known
	// to within the measurement's uncertainty (a round trip and the
	// clock's resolution): it may also end a session created within
	// simClockUncertainty after the call.
	refusedAt time.Time
}

// simClockUncertainty bounds how far after a refused sign-out everywhere
// its retry may reach. The cut-off and a new session's creation time are
// each the database's clock as one instance knew it, each to within half
// its last poll's round trip: far less than a second on one machine, even
// one that the rest of the test suite keeps busy.
const simClockUncertainty = time.Second

// simToken is what the model knows of one session.
type simToken struct {
	token, id, user string
	created         int64 // seq when Create or Rotate returned it
	// revoked is the seq at which a revoking call acknowledged its end,
	// revokedOn the instance; 0 while not known to be revoked.
	revoked   int64
	revokedOn int
	// refusedOn lists the instances where a revocation was refused by the
	// database (ErrNotPersisted): they must refuse the token from then on.
	refusedOn []int
	// mayEnd is set once any call that may end it was made: it is then
	// not required to be live.
	mayEnd    bool
	marks     []string // acknowledged Update marks
	successor *simToken
	rotations int
}

func newSim(t *testing.T, tdb testDB, seed uint64) *sim {
	s := &sim{t: t, tdb: tdb, seed: seed, dir: t.TempDir()}
	for i := range s.insts {
		in := &simInstance{idx: i, journal: filepath.Join(s.dir, fmt.Sprintf("journal-%d", i))}
		st, err := gormsession.NewStore(tdb.Open(t), gormsession.StoreOptions{TableName: tdb.Table, TombstoneTTL: simTombstoneTTL})
		if err != nil {
			t.Fatal(err)
		}
		in.f = newFaulty(st)
		rng := rand.New(rand.NewPCG(seed, uint64(100+i)))
		in.skew = simSkews[rng.IntN(len(simSkews))]
		var rngMu sync.Mutex
		in.f.chaos = func(op string) (fail, lose bool) {
			if op == "Stream" || op == "Head" {
				return false, false
			}
			rngMu.Lock()
			defer rngMu.Unlock()
			r := rng.Float64()
			return r < 0.03, r > 0.97
		}
		in.f.delay = func(op string) time.Duration {
			// Widen the windows between a write and what follows it.
			rngMu.Lock()
			defer rngMu.Unlock()
			if rng.IntN(4) == 0 {
				return time.Duration(rng.IntN(3000)) * time.Microsecond
			}
			return 0
		}
		s.insts[i] = in
		s.start(in)
	}
	return s
}

// start makes a new Manager for in, retrying while its database is down.
func (s *sim) start(in *simInstance) {
	s.t.Helper()
	opts := gormsession.ManagerOptions{
		// Polls are operations of the simulation, and run in the
		// background too, as often as the tombstone TTL allows.
		SyncInterval:    simTombstoneTTL / 10,
		Now:             skewed(in.skew),
		RetryInterval:   25 * time.Millisecond,
		CleanupInterval: -1,
		IdleTimeout:     time.Hour,
		TouchInterval:   time.Nanosecond, // every resolve records activity
		Journal:         in.journal,
		Logger:          discardLogger(),
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		begin := s.seq.Add(1)
		m, err := gormsession.NewManager(context.Background(), in.f, opts)
		if err == nil {
			in.m = m
			in.syncedAt.Store(begin)
			return
		}
		if time.Now().After(deadline) {
			s.fatalf("instance %d does not start: %v", in.idx, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (s *sim) closeAll() {
	for _, in := range s.insts {
		in.rw.Lock()
		in.f.setDown(false)
		in.f.pause()
		if in.m != nil {
			_ = in.m.Close()
		}
		in.rw.Unlock()
	}
}

func (s *sim) logf(format string, args ...any) {
	s.mu.Lock()
	s.log = append(s.log, fmt.Sprintf(format, args...))
	s.mu.Unlock()
}

// fatalf fails the run with the seed and the operation log.
func (s *sim) fatalf(format string, args ...any) {
	s.t.Helper()
	s.mu.Lock()
	log := s.log
	if len(log) > 400 {
		log = log[len(log)-400:]
	}
	s.mu.Unlock()
	s.t.Fatalf("seed %d on %s: %s\nreplay: GORMSESSION_SIM_SEED=%d go test -run TestSimulation .\noperation log (last %d):\n%s",
		s.seed, s.tdb.Name, fmt.Sprintf(format, args...), s.seed, len(log), strings.Join(log, "\n"))
}

// errorf records a violation found by a worker goroutine.
func (s *sim) errorf(format string, args ...any) {
	s.mu.Lock()
	s.failed = true
	s.log = append(s.log, "VIOLATION: "+fmt.Sprintf(format, args...))
	s.mu.Unlock()
}

func (s *sim) run(ops int) {
	for _, in := range s.insts {
		s.logf("i%d clock off by %v", in.idx, in.skew)
	}
	perPhase := max(1, ops/simPhases/simWorkers)
	for phase := range simPhases {
		var wg sync.WaitGroup
		for w := range simWorkers {
			rng := rand.New(rand.NewPCG(s.seed, uint64(phase*simWorkers+w)))
			wg.Go(func() {
				for range perPhase {
					s.step(w, rng)
				}
			})
		}
		wg.Wait()
		s.mu.Lock()
		failed := s.failed
		s.mu.Unlock()
		if failed {
			s.fatalf("an invariant broke during phase %d", phase)
		}
		s.quiesce()
		s.check(fmt.Sprintf("quiescence after phase %d", phase))
	}
	for _, in := range s.insts {
		s.restart(in)
	}
	s.quiesce()
	s.check("after restarting every instance")
}

// pick returns a random known token, or nil. Most picks are among the few
// newest tokens, so that workers often contend for one session.
func (s *sim) pick(rng *rand.Rand) *simToken {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.tokens)
	if n == 0 {
		return nil
	}
	if rng.IntN(4) > 0 {
		return s.tokens[n-1-rng.IntN(min(n, 3))]
	}
	return s.tokens[rng.IntN(n)]
}

// step runs one random operation on a random instance.
func (s *sim) step(w int, rng *rand.Rand) {
	in := s.insts[rng.IntN(simInstances)]
	user := fmt.Sprintf("user-%d", rng.IntN(simUsers))
	tok := s.pick(rng)
	r := rng.IntN(100)
	switch {
	case r < 4:
		s.outage(w, rng)
		return
	case r < 6:
		s.crash(in, rng)
		return
	case r < 7:
		s.restart(in)
		return
	case r < 8 && tok != nil:
		s.holdCommits(w, tok)
		return
	case r < 9 && rng.IntN(3) == 0:
		s.partition(w, in)
		return
	}
	in.rw.RLock()
	defer in.rw.RUnlock()
	ctx := context.Background()
	switch {
	case r < 25 || tok == nil:
		s.create(w, in, user)
	case r < 45:
		s.resolve(w, in, tok)
	case r < 60:
		mark := fmt.Sprintf("w%d.%d", w, rng.Uint32())
		_, err := in.m.Update(ctx, tok.id, appendMark(mark))
		s.logf("w%d i%d update %s +%s: %v", w, in.idx, short(tok.id), mark, err)
		if err == nil {
			s.mu.Lock()
			tok.marks = append(tok.marks, mark)
			s.mu.Unlock()
		}
	case r < 68:
		s.rotate(w, in, tok)
	case r < 76:
		s.revoke(w, in, tok)
	case r < 80:
		s.revokeUser(w, in, tok.user, nil)
	case r < 84:
		s.revokeUser(w, in, tok.user, tok)
	case r < 90:
		_, err := in.m.Cleanup(ctx)
		s.logf("w%d i%d cleanup (touches, retries): %v", w, in.idx, err)
	default:
		s.sync(w, in)
	}
}

func short(id string) string { return id[:8] }

// outage takes the database away from some instances for a while.
func (s *sim) outage(w int, rng *rand.Rand) {
	var hit []*simInstance
	for _, in := range s.insts {
		if rng.IntN(2) == 0 {
			hit = append(hit, in)
		}
	}
	d := time.Duration(5+rng.IntN(25)) * time.Millisecond
	s.logf("w%d outage of %d instances for %v", w, len(hit), d)
	for _, in := range hit {
		in.f.setDown(true)
	}
	time.Sleep(d)
	for _, in := range hit {
		in.f.setDown(false)
	}
}

// holdCommits holds back, from another connection, every write of tok's
// session (on SQLite every write) for simHold: the writes made meanwhile
// commit late. It returns at once; quiesce waits for the release.
func (s *sim) holdCommits(w int, tok *simToken) {
	db := s.tdb.Open(s.t)
	tx := db.Begin()
	var lock error
	if s.tdb.Name == "postgres" {
		lock = tx.Exec("SELECT id FROM "+s.tdb.Table+" WHERE id = ? FOR UPDATE", tok.id).Error
	} else {
		lock = tx.Exec("UPDATE "+s.tdb.Table+" SET device = device WHERE id = ?", tok.id).Error
	}
	s.logf("w%d hold the commits of %s for %v: %v", w, short(tok.id), simHold, lock)
	if lock != nil {
		tx.Rollback()
		return
	}
	s.holds.Go(func() {
		time.Sleep(simHold)
		tx.Commit()
		s.logf("w%d released the commits of %s", w, short(tok.id))
	})
}

// partition cuts one instance off the database for longer than tombstones
// are kept, while the others go on (and their cleanup deletes tombstones),
// and checks I8: once it reads the feed again, it has reloaded. The
// instance is not restarted meanwhile, so that the check counts the
// reloads of one Manager.
func (s *sim) partition(w int, in *simInstance) {
	in.rw.RLock()
	defer in.rw.RUnlock()
	d := simTombstoneTTL + 300*time.Millisecond
	in.f.cutOff()
	resyncs := in.m.Stats().Resyncs
	s.logf("w%d partition of i%d for %v", w, in.idx, d)
	time.Sleep(d)
	in.f.reconnect()
	s.logf("w%d partition of i%d over", w, in.idx)
	// A poll may still fail (an outage, an injected fault); the first
	// that succeeds must have reloaded, here or in the background.
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := in.m.Sync(ctx)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			s.errorf("i%d cannot read the feed 30 s after a partition: %v", in.idx, err)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := in.m.Stats().Resyncs; got == resyncs {
		s.errorf("I8: i%d read the feed again after a partition of %v (tombstones kept %v) without reloading", in.idx, d, simTombstoneTTL)
	} else {
		s.logf("w%d i%d reloaded after the partition (%d reloads)", w, in.idx, got-resyncs)
	}
}

// restart closes the instance's Manager and starts a new one, as a
// redeploy would.
func (s *sim) restart(in *simInstance) {
	in.rw.Lock()
	defer in.rw.Unlock()
	err := in.m.Close()
	s.logf("i%d restart (close: %v)", in.idx, err)
	s.start(in)
}

// crash ends the instance's process in the middle of journaling a
// revocation: the revocation of one of its sessions is refused by the
// database and journaled, the process dies without writing anything more,
// and the journal is left as a crash at a random byte of that write
// leaves it (see commitOrder). The revocation was never acknowledged, so
// it may or may not hold after the restart.
func (s *sim) crash(in *simInstance, rng *rand.Rand) {
	in.rw.Lock()
	defer in.rw.Unlock()
	tok := s.pick(rng)
	_, err := os.Stat(in.journal)
	if err != nil || tok == nil {
		s.logf("i%d crash (no journal yet: %v)", in.idx, err)
		in.m.Crash()
		s.start(in)
		return
	}
	s.mu.Lock()
	tok.mayEnd = true
	s.mu.Unlock()
	// The cut below models the two transactions of one journal write
	// (see commitOrder); a retry landing meanwhile (an outage may end
	// during the call) would add two more, whose pages the model would
	// write in an order bbolt never does. So the background work stops
	// first, and the file is read only once no one writes it.
	in.m.StopBackground()
	before, err := os.ReadFile(in.journal)
	if err != nil {
		s.fatalf("i%d crash: %v", in.idx, err)
	}
	in.f.setDown(true)
	err = in.m.Revoke(context.Background(), tok.id)
	after, rerr := os.ReadFile(in.journal)
	in.m.Crash()
	in.f.setDown(false)
	if rerr != nil {
		s.fatalf("i%d crash: %v", in.idx, rerr)
	}
	if n := max(metaTxid(after, 0), metaTxid(after, 1)) - max(metaTxid(before, 0), metaTxid(before, 1)); n != 0 && n != 2 {
		s.fatalf("i%d crash: the journal took %d transactions where one write takes 2", in.idx, n)
	}
	order := commitOrder(before, after)
	k := rng.IntN(len(order) + 1)
	if werr := os.WriteFile(in.journal, applyPrefix(before, after, order, k), 0o600); werr != nil {
		s.fatalf("i%d crash: %v", in.idx, werr)
	}
	s.logf("i%d crash while journaling the revocation of %s (%v): cut after %d of %d bytes", in.idx, short(tok.id), err, k, len(order))
	s.start(in)
}

func (s *sim) create(w int, in *simInstance, user string) {
	// A user-wide revocation under way when the creation begins, on
	// another instance, may run its statement after the row committed and
	// end it: the two overlap, and either outcome is right.
	s.mu.Lock()
	revokingAtBegin := s.users[userIndex(user)].inFlight > 0
	s.mu.Unlock()
	begin := s.seq.Add(1)
	started := time.Now() // about when the session's creation time is read
	sess, err := in.m.Create(context.Background(), gormsession.Attributes{UserID: user, Device: "sim"})
	end := s.seq.Add(1)
	s.logf("w%d i%d create %s: %v %v", w, in.idx, user, idOf(sess), err)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = append(s.tokens, &simToken{
		token: sess.Token, id: sess.ID, user: user, created: end,
		mayEnd: revokingAtBegin || s.userRevokeOverlaps(user, begin) ||
			started.Sub(s.users[userIndex(user)].refusedAt) < simClockUncertainty,
	})
}

func idOf(sess gormsession.Session) string {
	if sess.ID == "" {
		return "-"
	}
	return short(sess.ID)
}

// userRevokeOverlaps reports whether a user-wide revocation of user was
// under way at some point since seq begin. s.mu is held.
func (s *sim) userRevokeOverlaps(user string, begin int64) bool {
	u := &s.users[userIndex(user)]
	return u.inFlight > 0 || u.lastStarted > begin
}

func userIndex(user string) int {
	n, _ := strconv.Atoi(strings.TrimPrefix(user, "user-"))
	return n
}

// resolve checks I1 on one token: once revoked, it never resolves on the
// revoking instance, nor on any other after its next sync.
func (s *sim) resolve(w int, in *simInstance, tok *simToken) {
	begin := s.seq.Add(1)
	synced := in.syncedAt.Load()
	_, ok := in.m.Resolve(context.Background(), tok.token)
	s.logf("w%d i%d resolve %s: %v", w, in.idx, short(tok.id), ok)
	if !ok {
		return
	}
	s.mu.Lock()
	revoked, on, refused := tok.revoked, tok.revokedOn, slices.Contains(tok.refusedOn, in.idx)
	s.mu.Unlock()
	switch {
	case revoked != 0 && revoked < begin && on == in.idx:
		s.errorf("I1: %s resolves on instance %d, which revoked it", short(tok.id), in.idx)
	case revoked != 0 && revoked < synced:
		s.errorf("I1: %s resolves on instance %d, synced after its revocation", short(tok.id), in.idx)
	case refused:
		s.errorf("I1: %s resolves on instance %d, which revoked it while the database was down", short(tok.id), in.idx)
	}
}

func (s *sim) sync(w int, in *simInstance) {
	begin := s.seq.Add(1)
	err := in.m.Sync(context.Background())
	s.logf("w%d i%d sync: %v", w, in.idx, err)
	if err == nil && begin > in.syncedAt.Load() {
		in.syncedAt.Store(begin)
	}
}

func (s *sim) rotate(w int, in *simInstance, tok *simToken) {
	s.mu.Lock()
	tok.mayEnd = true
	// The successor keeps the old session's creation time, so a user-wide
	// revocation already under way when the rotation begins may end it too
	// (a session Create makes may be too, see create).
	revokingAtBegin := s.users[userIndex(tok.user)].inFlight > 0
	s.mu.Unlock()
	begin := s.seq.Add(1)
	next, err := in.m.Rotate(context.Background(), tok.token)
	end := s.seq.Add(1)
	s.logf("w%d i%d rotate %s: %v %v", w, in.idx, short(tok.id), idOf(next), err)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tok.rotations++
	if tok.rotations > 1 {
		s.failed = true
		s.log = append(s.log, fmt.Sprintf("VIOLATION: I4: %s rotated %d times", short(tok.id), tok.rotations))
	}
	if tok.revoked == 0 {
		tok.revoked, tok.revokedOn = end, in.idx
	}
	succ := &simToken{
		token: next.Token, id: next.ID, user: tok.user, created: end,
		mayEnd: revokingAtBegin || s.userRevokeOverlaps(tok.user, begin) || s.users[userIndex(tok.user)].refused > 0,
	}
	tok.successor = succ
	s.tokens = append(s.tokens, succ)
}

func (s *sim) revoke(w int, in *simInstance, tok *simToken) {
	s.mu.Lock()
	tok.mayEnd = true
	s.mu.Unlock()
	err := in.m.Revoke(context.Background(), tok.id)
	end := s.seq.Add(1)
	s.logf("w%d i%d revoke %s: %v", w, in.idx, short(tok.id), err)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err == nil:
		if tok.revoked == 0 {
			tok.revoked, tok.revokedOn = end, in.idx
		}
	case errors.Is(err, gormsession.ErrNotPersisted):
		tok.refusedOn = append(tok.refusedOn, in.idx)
	}
}

// revokeUser runs RevokeUser, or RevokeOthers keeping keep.
func (s *sim) revokeUser(w int, in *simInstance, user string, keep *simToken) {
	s.mu.Lock()
	begin := s.seq.Add(1)
	u := &s.users[userIndex(user)]
	u.inFlight++
	u.lastStarted = begin
	var covered []*simToken
	for _, tok := range s.tokens {
		if tok.user == user && tok != keep {
			tok.mayEnd = true
			covered = append(covered, tok)
		}
	}
	s.mu.Unlock()
	var (
		n   int
		err error
		op  = "revoke-user"
	)
	if keep == nil {
		n, err = in.m.RevokeUser(context.Background(), user)
	} else {
		op = "revoke-others keeping " + short(keep.id)
		n, err = in.m.RevokeOthers(context.Background(), user, keep.id)
	}
	end := s.seq.Add(1)
	s.logf("w%d i%d %s %s: %d %v", w, in.idx, op, user, n, err)
	s.mu.Lock()
	defer s.mu.Unlock()
	u.inFlight--
	for _, tok := range covered {
		if tok.created >= begin {
			continue // created while the call ran: either outcome is right
		}
		switch {
		case err == nil:
			if tok.revoked == 0 {
				tok.revoked, tok.revokedOn = end, in.idx
			}
		case errors.Is(err, gormsession.ErrNotPersisted):
			tok.refusedOn = append(tok.refusedOn, in.idx)
		}
	}
	if errors.Is(err, gormsession.ErrNotPersisted) {
		u.refused++
		u.refusedAt = time.Now()
	}
}

// quiesce ends every fault, lets every instance write what it has queued,
// then syncs every instance.
func (s *sim) quiesce() {
	ctx := context.Background()
	s.holds.Wait()
	for _, in := range s.insts {
		in.f.mu.Lock()
		in.f.down = false
		in.f.mu.Unlock()
	}
	for _, in := range s.insts {
		in.rw.RLock()
		resume := in.f.pause()
		// Once the database is back: a write that lost to another
		// instance's concurrent one (a deadlock PostgreSQL broke) is
		// tried again, as the background retry would.
		var err error
		pending := 0
		for attempt := range 3 {
			if _, err = in.m.Cleanup(ctx); err != nil {
				s.logf("i%d cleanup at quiescence, attempt %d: %v", in.idx, attempt+1, err)
			}
			if pending = in.m.Stats().PendingRevocations; err == nil && pending == 0 {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		resume()
		in.rw.RUnlock() // before failing: closeAll takes it
		if err != nil || pending != 0 {
			s.fatalf("I5: instance %d could not write its queued revocations once the database was back (%d pending): %v", in.idx, pending, err)
		}
	}
	for _, in := range s.insts {
		in.rw.RLock()
		resume := in.f.pause()
		begin := s.seq.Add(1)
		err := in.m.Sync(ctx)
		resume()
		in.rw.RUnlock() // before failing: closeAll takes it
		if err != nil {
			s.fatalf("instance %d: sync: %v", in.idx, err)
		}
		in.syncedAt.Store(begin)
	}
	s.logf("quiescence: faults off, queues drained, every instance synced")
}

// check verifies the invariants at quiescence against the database.
func (s *sim) check(when string) {
	s.t.Helper()
	all := streamAll(s.t, newStore(s.t, s.tdb, nil))
	live := make(map[string]gormsession.Session, len(all))
	for _, row := range all {
		live[row.ID] = row
	}
	s.mu.Lock()
	tokens := slices.Clone(s.tokens)
	s.mu.Unlock()

	for _, in := range s.insts {
		in.rw.RLock()
		m := in.m
		in.rw.RUnlock()
		// I2: every instance's memory equals the live rows.
		for u := range simUsers {
			user := fmt.Sprintf("user-%d", u)
			var want []string
			for id, row := range live {
				if row.UserID == user {
					want = append(want, id)
				}
			}
			slices.Sort(want)
			if got := listedIDs(m, user); !slices.Equal(got, want) {
				s.fatalf("I2 (%s): instance %d lists %d sessions of %s, the database has %d live:\n%v\n%v", when, in.idx, len(got), user, len(want), got, want)
			}
		}
		for id, row := range live {
			got, ok := m.Get(id)
			if !ok || got.UserID != row.UserID || got.TenantID != row.TenantID || got.Device != row.Device ||
				!bytes.Equal(got.Data, row.Data) || !got.ExpiresAt.Equal(row.ExpiresAt) {
				s.fatalf("I2 (%s): instance %d holds %+v for %s, the database %+v", when, in.idx, got, short(id), row)
			}
		}
		for _, tok := range tokens {
			_, ok := m.Resolve(context.Background(), tok.token)
			if _, isLive := live[tok.id]; ok != isLive {
				s.fatalf("I2 (%s): %s resolves %v on instance %d, live in the database %v", when, short(tok.id), ok, in.idx, isLive)
			}
		}
	}
	for _, tok := range tokens {
		_, isLive := live[tok.id]
		// I1: a revoked token is gone from the database too.
		if (tok.revoked != 0 || len(tok.refusedOn) > 0) && isLive {
			s.fatalf("I1 (%s): %s was revoked but is live in the database", when, short(tok.id))
		}
		// I3: an acknowledged session that nothing may have ended is live.
		if !tok.mayEnd && !isLive {
			s.fatalf("I3 (%s): %s was created and never revoked, rotated or signed out, but is gone", when, short(tok.id))
		}
		// I3, I4: every acknowledged update is in the one live successor.
		last := tok
		var marks []string
		for t := tok; t != nil; t = t.successor {
			marks = append(marks, t.marks...)
			last = t
		}
		if row, ok := live[last.id]; ok {
			for _, mark := range marks {
				if !bytes.Contains(row.Data, []byte("|"+mark)) {
					s.fatalf("I3 (%s): acknowledged update %s of %s is missing from %s's data %q", when, mark, short(tok.id), short(last.id), row.Data)
				}
			}
		}
		if tok.rotations > 1 {
			s.fatalf("I4 (%s): %s has %d successors", when, short(tok.id), tok.rotations)
		}
	}
	s.logf("checked %s: %d live rows, %d tokens", when, len(live), len(tokens))
}

// discardLogger returns a logger that drops everything: the simulation's
// faults make the Manager log on purpose.
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
