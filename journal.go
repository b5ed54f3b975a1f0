package gormsession

// The revocation journal: the revocations the Backend has not acknowledged
// yet, kept in a bbolt file so that they survive a restart (and a crash)
// of the process before the database is back.
//
// One bucket holds the pending records, keyed by a sequence number; a
// record is written in the transaction that queues it, rewritten in the
// transaction of a rotation that moves its keep, and deleted in the
// transaction that marks it landed: the file holds what is pending and
// nothing else, and bbolt reuses the space of what left it. A summary
// record (how many records, and a digest of them) is updated in the same
// transactions, and every record carries a checksum of its own, so that a
// damaged file is refused at start rather than read short.
//
// bbolt commits a transaction by writing its data pages (and its free
// list), syncing them, then writing one of its two meta pages and syncing
// again; a crash at any
// byte leaves the previous meta page, and so the previous state, intact.
// bbolt falls back to the older meta page when the newer one does not
// verify, which after a crash is right but after a flipped byte in a
// complete file would silently drop the last transaction. So every change
// is followed by an empty transaction that writes the other meta page
// with the same state: from then on either meta page gives the latest
// state.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// MaxPendingRevocations is how many revocations a Manager keeps queued for
// the Backend at most (journaled with ManagerOptions.Journal). A revoking
// call past it still takes effect in memory, but is neither retried nor
// journaled: it returns an error wrapping ErrNotPersisted and
// ErrTooManyPending. Nothing already queued is dropped.
const MaxPendingRevocations = 10_000

// ErrTooManyPending means MaxPendingRevocations revocations are already
// queued for the Backend: a new one takes effect in memory only.
var ErrTooManyPending = errors.New("gormsession: too many revocations pending")

// journalLockTimeout is how long opening a journal waits for the file lock
// that another Manager or process holds.
const journalLockTimeout = 100 * time.Millisecond

var (
	bucketPending = []byte("pending")
	bucketState   = []byte("state")
	keySummary    = []byte("summary")
)

const (
	recordVersion  = 1
	summaryVersion = 1
)

// journaled is a revocation as the journal holds it, under its sequence.
type journaled struct {
	seq uint64
	r   revocation
}

// journal is an open journal file.
type journal struct {
	db   *bolt.DB
	path string
}

// journalSummary is what the summary record says of the pending bucket.
type journalSummary struct {
	count  uint64
	digest uint64 // XOR of recordDigest over the records
}

// openJournal opens (creating it if needed) the journal at path, holding
// its lock until close, and returns the pending revocations it holds.
// Without a path it returns an empty queue with no journal.
func openJournal(path string) (*pendingRevocations, error) {
	if path == "" {
		return &pendingRevocations{}, nil
	}
	j, recs, err := openJournalFile(path)
	if err != nil {
		return nil, err
	}
	return &pendingRevocations{journal: j, loaded: recs}, nil
}

// openJournalFile opens the journal at path and reads its records.
func openJournalFile(path string) (*journal, []journaled, error) {
	if err := createJournal(path); err != nil {
		return nil, nil, err
	}
	if err := precheck(path); err != nil {
		return nil, nil, err
	}
	var recs []journaled
	var (
		file *os.File
		db   *bolt.DB
	)
	err := protect(func() (err error) {
		db, err = bolt.Open(path, 0o600, &bolt.Options{
			Timeout: journalLockTimeout,
			OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
				f, err := os.OpenFile(name, flag, perm)
				file = f
				return f, err
			},
		})
		if err != nil {
			return err
		}
		if recs, err = (&journal{db: db, path: path}).verify(); err != nil {
			_ = db.Close()
			return err
		}
		return nil
	})
	if err != nil && file != nil {
		// After a panic: release the file and its lock, whatever state
		// bbolt was left in.
		if db != nil {
			_ = protect(db.Close)
		}
		unlockFile(file)
		_ = file.Close()
	}
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, nil, fmt.Errorf("gormsession: journal %s is in use by another Manager or process; each needs a file of its own", path)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("gormsession: journal %s: damaged or unreadable, refused: %w", path, err)
	}
	return &journal{db: db, path: path}, recs, nil
}

// precheck reads the bbolt meta pages of the journal at path and checks
// that the free list they point to, and every page, fits in the file,
// before bbolt reads them: a damaged length there would make bbolt
// allocate or loop over billions of entries. It holds a shared lock while it reads, so a journal
// in use is reported as such.
func precheck(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("gormsession: journal %s: %w", path, err)
	}
	defer func() { _ = f.Close() }() // read only
	if !lockShared(f) {
		return fmt.Errorf("gormsession: journal %s is in use by another Manager or process; each needs a file of its own", path)
	}
	if err := checkFreelist(f); err != nil {
		return fmt.Errorf("gormsession: journal %s: damaged, refused: %w", path, err)
	}
	return nil
}

// checkFreelist checks the free list of the meta page bbolt will use, and
// the lengths of the pages below its high-water mark; see precheck. A file whose meta pages are both invalid is left for bbolt to
// refuse.
func checkFreelist(f *os.File) error {
	const pgidNoFreelist = 1<<64 - 1
	ps := int64(os.Getpagesize())
	var best []byte
	for page := range int64(2) {
		b := make([]byte, 80)
		if _, err := f.ReadAt(b, page*ps); err != nil {
			return nil
		}
		meta := b[16:]
		h := fnv.New64a()
		h.Write(meta[:56])
		if binary.LittleEndian.Uint32(meta) != 0xED0CDAED || h.Sum64() != binary.LittleEndian.Uint64(meta[56:]) ||
			int64(binary.LittleEndian.Uint32(meta[8:])) != ps {
			continue
		}
		if best == nil || binary.LittleEndian.Uint64(meta[48:]) > binary.LittleEndian.Uint64(best[48:]) {
			best = meta
		}
	}
	if best == nil {
		return nil
	}
	freelist, hw := binary.LittleEndian.Uint64(best[32:]), binary.LittleEndian.Uint64(best[40:])
	if freelist == pgidNoFreelist {
		return nil
	}
	if freelist < 2 || freelist >= hw {
		return fmt.Errorf("free list page %d outside the file's %d pages", freelist, hw)
	}
	head := make([]byte, 24)
	if _, err := f.ReadAt(head, int64(freelist)*ps); err != nil {
		return fmt.Errorf("free list page %d: %w", freelist, err)
	}
	count, overflow := uint64(binary.LittleEndian.Uint16(head[10:])), uint64(binary.LittleEndian.Uint32(head[12:]))
	if count == 0xffff {
		count = binary.LittleEndian.Uint64(head[16:]) + 1
	}
	if overflow >= hw-freelist || count > ((overflow+1)*uint64(ps)-16)/8 {
		return fmt.Errorf("free list page %d: %d entries on %d pages", freelist, count, overflow+1)
	}
	// No branch, leaf or free list page may run past the end: bbolt's
	// check would loop over the pages it claims.
	for id := uint64(2); id < hw; id++ {
		if _, err := f.ReadAt(head[:16], int64(id)*ps); err != nil {
			return fmt.Errorf("page %d: %w", id, err)
		}
		flags, overflow := binary.LittleEndian.Uint16(head[8:]), uint64(binary.LittleEndian.Uint32(head[12:]))
		if flags&(0x01|0x02|0x10) != 0 && overflow >= hw-id {
			return fmt.Errorf("page %d claims %d pages past the file's %d", id, overflow, hw)
		}
	}
	// Every page reachable from the root lies in the file, once, with its
	// elements inside it: bbolt turns their offsets into pointers.
	t := treeCheck{f: f, ps: ps, hw: hw, seen: map[uint64]bool{}}
	return t.page(binary.LittleEndian.Uint64(best[16:]), 0)
}

// treeCheck walks the pages of a bbolt file; see checkFreelist.
type treeCheck struct {
	f    *os.File
	ps   int64
	hw   uint64
	seen map[uint64]bool
}

// page checks page id and what it reaches, depth levels down.
func (t *treeCheck) page(id uint64, depth int) error {
	if depth > 16 || id < 2 || id >= t.hw || t.seen[id] {
		return fmt.Errorf("page %d: out of place", id)
	}
	t.seen[id] = true
	head := make([]byte, 16)
	if _, err := t.f.ReadAt(head, int64(id)*t.ps); err != nil {
		return fmt.Errorf("page %d: %w", id, err)
	}
	if binary.LittleEndian.Uint64(head) != id {
		return fmt.Errorf("page %d: says it is page %d", id, binary.LittleEndian.Uint64(head))
	}
	n := int64(binary.LittleEndian.Uint32(head[12:])+1) * t.ps
	buf := make([]byte, n)
	if _, err := t.f.ReadAt(buf, int64(id)*t.ps); err != nil {
		return fmt.Errorf("page %d: %w", id, err)
	}
	return t.elements(id, buf, depth)
}

// elements checks the elements of the page in buf (a page of its own, or
// an inline bucket's).
func (t *treeCheck) elements(id uint64, buf []byte, depth int) error {
	if len(buf) < 16 {
		return fmt.Errorf("page %d: short", id)
	}
	flags, count := binary.LittleEndian.Uint16(buf[8:]), int(binary.LittleEndian.Uint16(buf[10:]))
	if 16+count*16 > len(buf) {
		return fmt.Errorf("page %d: %d elements do not fit", id, count)
	}
	for i := range count {
		e := 16 + i*16
		pos, ksize := int(binary.LittleEndian.Uint32(buf[e+4:])), int(binary.LittleEndian.Uint32(buf[e+8:]))
		switch flags {
		case 0x01: // branch: pos, ksize, pgid
			pos, ksize = int(binary.LittleEndian.Uint32(buf[e:])), int(binary.LittleEndian.Uint32(buf[e+4:]))
			if pos < 0 || ksize < 0 || e+pos+ksize > len(buf) {
				return fmt.Errorf("page %d: element %d outside it", id, i)
			}
			if err := t.page(binary.LittleEndian.Uint64(buf[e+8:]), depth+1); err != nil {
				return err
			}
		case 0x02: // leaf: flags, pos, ksize, vsize
			vsize := int(binary.LittleEndian.Uint32(buf[e+12:]))
			if pos < 0 || ksize < 0 || vsize < 0 || e+pos+ksize+vsize > len(buf) {
				return fmt.Errorf("page %d: element %d outside it", id, i)
			}
			if binary.LittleEndian.Uint32(buf[e:])&0x01 == 0 {
				continue
			}
			// A bucket: its root page, or the page inline after its header.
			v := buf[e+pos+ksize : e+pos+ksize+vsize]
			if len(v) < 16 {
				return fmt.Errorf("page %d: bucket %d too short", id, i)
			}
			if root := binary.LittleEndian.Uint64(v); root != 0 {
				if err := t.page(root, depth+1); err != nil {
					return err
				}
			} else if err := t.elements(id, v[16:], depth+1); err != nil {
				return err
			}
		default:
			return fmt.Errorf("page %d: neither branch nor leaf", id)
		}
	}
	return nil
}

// protect runs fn, turning a panic, or a fault reading the file's map,
// into an error: bbolt reads its pages in place, and a damaged page could
// make it index out of range or read past the map.
func protect(fn func() error) (err error) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("%v", r)
			}
		}()
		debug.SetPanicOnFault(true)
		err = fn()
	}()
	<-done
	return err
}

// createJournal makes an empty journal at path unless a file is there: in
// a temporary file first, linked into place only once complete and
// synced, so that a crash during the creation leaves no half-made file.
func createJournal(path string) error {
	if _, err := os.Stat(path); err == nil || !errors.Is(err, os.ErrNotExist) {
		return nil // there already, or bolt.Open reports why not
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".new-*")
	if err != nil {
		return fmt.Errorf("gormsession: create journal %s: %w", path, err)
	}
	name := tmp.Name()
	_ = tmp.Close()
	defer func() { _ = os.Remove(name) }() // a temporary file; a leftover is harmless
	db, err := bolt.Open(name, 0o600, &bolt.Options{Timeout: journalLockTimeout})
	if err != nil {
		return fmt.Errorf("gormsession: create journal %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucket(bucketPending); err != nil {
			return err
		}
		st, err := tx.CreateBucket(bucketState)
		if err != nil {
			return err
		}
		return st.Put(keySummary, encodeSummary(journalSummary{}))
	})
	if err == nil {
		err = db.Update(func(*bolt.Tx) error { return nil })
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// Link fails when another process made the file meanwhile: then
		// that one is used.
		if lerr := os.Link(name, path); lerr != nil && !errors.Is(lerr, os.ErrExist) {
			err = lerr
		}
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("gormsession: create journal %s: %w", path, err)
	}
	return nil
}

// syncDir syncs a directory, so that a file linked into it stays.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// verify reads every record and checks it against its checksum and the
// summary, and the file's structure with bbolt's own check, then seals:
// writes the other meta page with the state just read, which also
// replaces a meta page torn by a crash. It runs under protect, and reads
// every page (the free list by a write transaction, rolled back) before
// bbolt's check reads them again in a goroutine of its own, where a fault
// could not be recovered.
func (j *journal) verify() ([]journaled, error) {
	tx, err := j.db.Begin(true)
	if err != nil {
		return nil, err
	}
	_ = tx.Rollback()
	recs, err := j.read()
	if err != nil {
		return nil, err
	}
	return recs, j.seal()
}

// read reads and checks the records; see verify.
func (j *journal) read() ([]journaled, error) {
	var recs []journaled
	err := j.db.View(func(tx *bolt.Tx) error {
		b, st := tx.Bucket(bucketPending), tx.Bucket(bucketState)
		if b == nil || st == nil {
			return errors.New("a bucket is missing")
		}
		want, ok := decodeSummary(st.Get(keySummary))
		if !ok {
			return errors.New("bad summary record")
		}
		var got journalSummary
		err := b.ForEach(func(k, v []byte) error {
			r, ok := decodeRecord(k, v)
			if !ok {
				return fmt.Errorf("bad record %x (%d bytes) of %d bytes", k[:min(len(k), 8)], len(k), len(v))
			}
			recs = append(recs, journaled{seq: binary.BigEndian.Uint64(k), r: r})
			got.count++
			got.digest ^= recordDigest(k, v)
			return nil
		})
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("%d records where the summary says %d, or their digest differs", got.count, want.count)
		}
		var errs []error
		for cerr := range tx.Check() {
			errs = append(errs, cerr)
		}
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
		return nil
	})
	return recs, err
}

// seal commits an empty transaction: see the file's comment.
func (j *journal) seal() error {
	return j.db.Update(func(*bolt.Tx) error { return nil })
}

// update runs fn in a transaction that also keeps the summary, and seals.
func (j *journal) update(fn func(b *bolt.Bucket, sum *journalSummary) error) error {
	err := j.db.Update(func(tx *bolt.Tx) error {
		b, st := tx.Bucket(bucketPending), tx.Bucket(bucketState)
		if b == nil || st == nil {
			return errors.New("a bucket is missing")
		}
		sum, ok := decodeSummary(st.Get(keySummary))
		if !ok {
			return errors.New("bad summary record")
		}
		if err := fn(b, &sum); err != nil {
			return err
		}
		return st.Put(keySummary, encodeSummary(sum))
	})
	if err == nil {
		err = j.seal()
	}
	if err != nil {
		return fmt.Errorf("gormsession: journal %s: %w", j.path, err)
	}
	return nil
}

// put records revocation r under seq.
func (j *journal) put(seq uint64, r revocation) error {
	return j.update(func(b *bolt.Bucket, sum *journalSummary) error {
		k := seqKey(seq)
		if old := b.Get(k); old != nil {
			sum.count--
			sum.digest ^= recordDigest(k, old)
		}
		v := encodeRecord(k, r)
		sum.count++
		sum.digest ^= recordDigest(k, v)
		return b.Put(k, v)
	})
}

// remove deletes the records of seqs: they landed.
func (j *journal) remove(seqs ...uint64) error {
	return j.update(func(b *bolt.Bucket, sum *journalSummary) error {
		for _, seq := range seqs {
			k := seqKey(seq)
			old := b.Get(k)
			if old == nil {
				continue
			}
			sum.count--
			sum.digest ^= recordDigest(k, old)
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// rekeep rewrites the records of seqs, those still there, to keep to: in
// one transaction, so that a restart replays either the old keep or the
// new one for all of them.
func (j *journal) rekeep(seqs []uint64, to string) error {
	return j.update(func(b *bolt.Bucket, sum *journalSummary) error {
		for _, seq := range seqs {
			k := seqKey(seq)
			old := b.Get(k)
			if old == nil {
				continue // landed meanwhile
			}
			r, ok := decodeRecord(k, old)
			if !ok {
				return fmt.Errorf("bad record %x", k[:min(len(k), 8)])
			}
			r.KeepID = to
			v := encodeRecord(k, r)
			sum.digest ^= recordDigest(k, old) ^ recordDigest(k, v)
			if err := b.Put(k, v); err != nil {
				return err
			}
		}
		return nil
	})
}

// close closes the file and releases its lock.
func (j *journal) close() error {
	if err := j.db.Close(); err != nil {
		return fmt.Errorf("gormsession: journal %s: %w", j.path, err)
	}
	return nil
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeRecord encodes r, stored under key k: a version byte, the fields
// with their lengths, and a checksum of the key and all that precedes it.
func encodeRecord(k []byte, r revocation) []byte {
	v := []byte{recordVersion}
	for _, s := range []string{r.ID, r.UserID, r.KeepID} {
		v = binary.AppendUvarint(v, uint64(len(s)))
		v = append(v, s...)
	}
	v = binary.BigEndian.AppendUint64(v, uint64(r.Before))
	return binary.BigEndian.AppendUint32(v, crc32.Checksum(append(bytes.Clone(k), v...), castagnoli))
}

// decodeRecord decodes what encodeRecord made, and checks it.
func decodeRecord(k, v []byte) (revocation, bool) {
	if len(k) != 8 || len(v) < 1+3+8+4 || v[0] != recordVersion {
		return revocation{}, false
	}
	body, sum := v[:len(v)-4], binary.BigEndian.Uint32(v[len(v)-4:])
	if crc32.Checksum(append(bytes.Clone(k), body...), castagnoli) != sum {
		return revocation{}, false
	}
	rest := body[1:]
	var fields [3]string
	for i := range fields {
		n, w := binary.Uvarint(rest)
		if w <= 0 || n > uint64(len(rest)-w) {
			return revocation{}, false
		}
		fields[i] = string(rest[w : w+int(n)])
		rest = rest[w+int(n):]
	}
	if len(rest) != 8 {
		return revocation{}, false
	}
	r := revocation{ID: fields[0], UserID: fields[1], KeepID: fields[2], Before: int64(binary.BigEndian.Uint64(rest))}
	return r, r.valid()
}

// recordDigest is a record's share of the summary's digest.
func recordDigest(k, v []byte) uint64 {
	h := fnv.New64a()
	h.Write(k)
	h.Write(v)
	return h.Sum64()
}

func encodeSummary(s journalSummary) []byte {
	v := []byte{summaryVersion}
	v = binary.BigEndian.AppendUint64(v, s.count)
	v = binary.BigEndian.AppendUint64(v, s.digest)
	return binary.BigEndian.AppendUint32(v, crc32.Checksum(v, castagnoli))
}

func decodeSummary(v []byte) (journalSummary, bool) {
	if len(v) != 1+8+8+4 || v[0] != summaryVersion || crc32.Checksum(v[:17], castagnoli) != binary.BigEndian.Uint32(v[17:]) {
		return journalSummary{}, false
	}
	return journalSummary{count: binary.BigEndian.Uint64(v[1:]), digest: binary.BigEndian.Uint64(v[9:])}, true
}
