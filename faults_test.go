package gormsession_test

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/gormsession/gormsession"
)

// errInjected is the failure a faultyBackend injects.
var errInjected = errors.New("injected fault: database unreachable")

// faultyBackend is a real Store with faults and pauses injected around its
// calls: a whole-database outage, the failure of chosen operations (before
// or after the real write, as a lost reply would), and a gate that holds a
// call after its real write until the test releases it, to force one
// interleaving of two writers.
type faultyBackend struct {
	*gormsession.Store

	mu        sync.Mutex
	down      bool            // every call fails before reaching the database
	failOps   map[string]bool // these calls fail before reaching the database
	lostReply map[string]bool // these calls reach the database, then fail
	gates     map[string]*gate
	early     map[string]*gate              // hold the next call before it reaches the database
	delay     func(op string) time.Duration // before the call and after its work
	// chaos, when set, decides per call whether it fails before reaching
	// the database (fail) or after its write landed (lose).
	chaos func(op string) (fail, lose bool)
	// cut is a partition (see cutOff): every call fails before reaching
	// the database, whatever down says; reading counts the reads of the
	// feed (Changes, Head, Stream) that reached it and have not returned.
	cut     bool
	reading int
}

// gate holds the next call of one operation after its real work.
type gate struct {
	reached chan struct{} // closed when the call reaches the gate
	release chan struct{} // close to let it go on
}

func newFaulty(st *gormsession.Store) *faultyBackend {
	return &faultyBackend{Store: st, failOps: map[string]bool{}, lostReply: map[string]bool{}, gates: map[string]*gate{}, early: map[string]*gate{}}
}

// setDown starts or ends a database outage.
func (f *faultyBackend) setDown(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

// cutOff starts a partition, and returns once no read of the feed that
// began before it is still under way: the instance's last successful read
// is then over, and none follows until reconnect.
func (f *faultyBackend) cutOff() {
	f.mu.Lock()
	f.cut = true
	f.mu.Unlock()
	for {
		f.mu.Lock()
		n := f.reading
		f.mu.Unlock()
		if n == 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// reconnect ends a partition.
func (f *faultyBackend) reconnect() {
	f.mu.Lock()
	f.cut = false
	f.mu.Unlock()
}

// beginRead is called by a read of the feed once before let it through:
// it fails during a partition, and else counts the read as under way
// until endRead.
func (f *faultyBackend) beginRead() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cut {
		return errInjected
	}
	f.reading++
	return nil
}

func (f *faultyBackend) endRead() {
	f.mu.Lock()
	f.reading--
	f.mu.Unlock()
}

// pause stops injecting chaos faults and returns a function that resumes.
func (f *faultyBackend) pause() (resume func()) {
	f.mu.Lock()
	chaos := f.chaos
	f.chaos = nil
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		f.chaos = chaos
		f.mu.Unlock()
	}
}

// fail makes op fail before reaching the database, or stop doing so.
func (f *faultyBackend) fail(op string, on bool) {
	f.mu.Lock()
	f.failOps[op] = on
	f.mu.Unlock()
}

// holdAfter returns a gate that holds the next call of op once its real
// work is done.
func (f *faultyBackend) holdAfter(op string) *gate {
	g := &gate{reached: make(chan struct{}), release: make(chan struct{})}
	f.mu.Lock()
	f.gates[op] = g
	f.mu.Unlock()
	return g
}

// holdBefore returns a gate that holds the next call of op before it
// reaches the database.
func (f *faultyBackend) holdBefore(op string) *gate {
	g := &gate{reached: make(chan struct{}), release: make(chan struct{})}
	f.mu.Lock()
	f.early[op] = g
	f.mu.Unlock()
	return g
}

// loseReply makes op reach the database, then fail, or stop doing so.
func (f *faultyBackend) loseReply(op string, on bool) {
	f.mu.Lock()
	f.lostReply[op] = on
	f.mu.Unlock()
}

// before is called before op reaches the database.
func (f *faultyBackend) before(op string) error {
	f.mu.Lock()
	g := f.early[op]
	delete(f.early, op)
	f.mu.Unlock()
	if g != nil {
		close(g.reached)
		<-g.release
	}
	f.mu.Lock()
	down, fail, delay, chaos := f.down || f.cut, f.failOps[op], f.delay, f.chaos
	f.mu.Unlock()
	if delay != nil {
		time.Sleep(delay(op))
	}
	if chaos != nil {
		if c, _ := chaos(op); c {
			fail = true
		}
	}
	if down || fail {
		return errInjected
	}
	return nil
}

// after is called once op's real work returned err.
func (f *faultyBackend) after(op string, err error) error {
	f.mu.Lock()
	g := f.gates[op]
	delete(f.gates, op)
	lost, chaos, delay := f.lostReply[op], f.chaos, f.delay
	f.mu.Unlock()
	if delay != nil {
		time.Sleep(delay(op))
	}
	if chaos != nil {
		if _, l := chaos(op); l {
			lost = true
		}
	}
	if g != nil {
		close(g.reached)
		<-g.release
	}
	if err == nil && lost {
		return errInjected
	}
	return err
}

func (f *faultyBackend) Stream(ctx context.Context, now time.Time, fn func(*gormsession.Session) error) error {
	if err := f.before("Stream"); err != nil {
		return err
	}
	if err := f.beginRead(); err != nil {
		return err
	}
	defer f.endRead()
	return f.after("Stream", f.Store.Stream(ctx, now, fn))
}

func (f *faultyBackend) Head(ctx context.Context) (gormsession.FeedPosition, error) {
	if err := f.before("Head"); err != nil {
		return gormsession.FeedPosition{}, err
	}
	if err := f.beginRead(); err != nil {
		return gormsession.FeedPosition{}, err
	}
	defer f.endRead()
	pos, err := f.Store.Head(ctx)
	return pos, f.after("Head", err)
}

func (f *faultyBackend) Get(ctx context.Context, id string) (gormsession.Session, bool, error) {
	if err := f.before("Get"); err != nil {
		return gormsession.Session{}, false, err
	}
	s, found, err := f.Store.Get(ctx, id)
	return s, found, f.after("Get", err)
}

func (f *faultyBackend) Insert(ctx context.Context, s *gormsession.Session) error {
	if err := f.before("Insert"); err != nil {
		return err
	}
	return f.after("Insert", f.Store.Insert(ctx, s))
}

func (f *faultyBackend) Update(ctx context.Context, s *gormsession.Session) error {
	if err := f.before("Update"); err != nil {
		return err
	}
	return f.after("Update", f.Store.Update(ctx, s))
}

func (f *faultyBackend) Rotate(ctx context.Context, oldID, newID string, at time.Time) (gormsession.Session, error) {
	if err := f.before("Rotate"); err != nil {
		return gormsession.Session{}, err
	}
	s, err := f.Store.Rotate(ctx, oldID, newID, at)
	return s, f.after("Rotate", err)
}

func (f *faultyBackend) Revoke(ctx context.Context, id string) error {
	if err := f.before("Revoke"); err != nil {
		return err
	}
	return f.after("Revoke", f.Store.Revoke(ctx, id))
}

func (f *faultyBackend) RevokeUser(ctx context.Context, userID, exceptID string, before time.Time) ([]string, error) {
	if err := f.before("RevokeUser"); err != nil {
		return nil, err
	}
	ids, err := f.Store.RevokeUser(ctx, userID, exceptID, before)
	return ids, f.after("RevokeUser", err)
}

func (f *faultyBackend) RemoveExpired(ctx context.Context) (int64, error) {
	if err := f.before("RemoveExpired"); err != nil {
		return 0, err
	}
	n, err := f.Store.RemoveExpired(ctx)
	return n, f.after("RemoveExpired", err)
}

func (f *faultyBackend) Touch(ctx context.Context, ids []string, at time.Time) error {
	if err := f.before("Touch"); err != nil {
		return err
	}
	return f.after("Touch", f.Store.Touch(ctx, ids, at))
}

func (f *faultyBackend) Changes(ctx context.Context, cursor int64, fn func(*gormsession.Session, bool) error) (gormsession.FeedPosition, error) {
	if err := f.before("Changes"); err != nil {
		return gormsession.FeedPosition{}, err
	}
	if err := f.beginRead(); err != nil {
		return gormsession.FeedPosition{}, err
	}
	defer f.endRead()
	pos, err := f.Store.Changes(ctx, cursor, fn)
	return pos, f.after("Changes", err)
}
