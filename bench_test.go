package gormsession_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/internal/testdb"
)

// benchManager returns a Manager on SQLite holding n sessions, and their
// tokens.
func benchManager(b *testing.B, n int) (*gormsession.Manager, []string) {
	b.Helper()
	m := newManager(b, newStore(b, newSQLite(b), nil), gormsession.ManagerOptions{CleanupInterval: -1})
	tokens := make([]string, n)
	for i := range tokens {
		s, err := m.Create(context.Background(), gormsession.Attributes{
			UserID: fmt.Sprint("user-", i%100), TenantID: "acme", Device: "Firefox on Linux", Data: []byte("payload"),
		})
		if err != nil {
			b.Fatal(err)
		}
		tokens[i] = s.Token
	}
	return m, tokens
}

func BenchmarkResolve(b *testing.B) {
	m, tokens := benchManager(b, 1000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, ok := m.Resolve(context.Background(), tokens[i%len(tokens)]); !ok {
			b.Fatal("miss")
		}
	}
}

// BenchmarkResolveFloor is BenchmarkResolve's floor: the same tokens looked
// up in the same order by resolveFloor, SHA-256 and one probe of a map
// keyed by the digest with the value inline. Run the two together.
func BenchmarkResolveFloor(b *testing.B) {
	_, tokens := benchManager(b, 1000)
	floor := make(map[[32]byte]floorEntry, len(tokens))
	for i, t := range tokens {
		floor[sha256.Sum256([]byte(t))] = floorEntry{user: fmt.Sprint("user-", i%100), expires: 1}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, ok := resolveFloor(floor, tokens[i%len(tokens)]); !ok {
			b.Fatal("miss")
		}
	}
}

func BenchmarkResolveParallel(b *testing.B) {
	m, tokens := benchManager(b, 1000)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, ok := m.Resolve(context.Background(), tokens[i%len(tokens)]); !ok {
				b.Error("miss")
				return
			}
			i++
		}
	})
}

func BenchmarkResolveMiss(b *testing.B) {
	m, _ := benchManager(b, 1000)
	unknown := gormsession.NewToken()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, ok := m.Resolve(context.Background(), unknown); ok {
			b.Fatal("hit")
		}
	}
}

func BenchmarkCreate(b *testing.B) {
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(name, func(b *testing.B) {
			tdb := benchDB(b, name)
			db, c := testdb.Counted(tdb.Open(b))
			m := newManager(b, newStore(b, tdb, db), gormsession.ManagerOptions{CleanupInterval: -1, SyncInterval: -1})
			ctx := context.Background()
			p := gormsession.Attributes{UserID: "alice", Device: "Firefox on Linux", Data: []byte("payload")}
			c.Reset()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := m.Create(ctx, p); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(c.N())/float64(b.N), "stmts/op")
		})
	}
}

// BenchmarkLoad measures NewManager loading GORMSESSION_LOAD_N signed-in
// sessions (default 100,000; set 1000000 for the figure in the README)
// without Data, for 4 sessions per user, beside GORMSESSION_LOAD_ANON
// anonymous ones (default 0), which are not loaded. It reports the seconds
// of one load and the heap bytes each loaded session holds.
//
//	GORMSESSION_LOAD_N=1000000 go test -run '^$' -bench Load -benchtime 1x
//	GORMSESSION_LOAD_N=100000 GORMSESSION_LOAD_ANON=1000000 go test -run '^$' -bench Load -benchtime 1x
func BenchmarkLoad(b *testing.B) {
	n, anon := envInt(b, "GORMSESSION_LOAD_N", 100_000), envInt(b, "GORMSESSION_LOAD_ANON", 0)
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(fmt.Sprintf("%s/%d", name, n), func(b *testing.B) {
			tdb := benchDB(b, name)
			db := tdb.Open(b)
			st := newStore(b, tdb, db)
			fillSessions(b, db, tdb.Table, n, anon)
			b.ResetTimer()
			var secs, perSession float64
			for b.Loop() {
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				start := time.Now()
				m, err := gormsession.NewManager(context.Background(), st, gormsession.ManagerOptions{CleanupInterval: -1})
				if err != nil {
					b.Fatal(err)
				}
				secs = time.Since(start).Seconds()
				runtime.GC()
				runtime.ReadMemStats(&after)
				if resident(m) != n {
					b.Fatalf("loaded %d sessions, want %d", resident(m), n)
				}
				perSession = float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
				runtime.KeepAlive(m)
				if err := m.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(secs, "s/load")
			b.ReportMetric(perSession, "heapB/session")
		})
	}
}

// envInt returns the integer in the environment variable name, or def.
func envInt(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		b.Fatalf("%s: %v", name, err)
	}
	return n
}

// fillSessions inserts n signed-in and anon anonymous sessions without
// Data, in batches inside one transaction.
func fillSessions(b *testing.B, db *gorm.DB, table string, n, anon int) {
	fillRows(b, db, table, n, anon, strconv.Itoa)
}

// fillRows is fillSessions with the i-th session's token given by token.
func fillRows(b *testing.B, db *gorm.DB, table string, n, anon int, token func(int) string) {
	b.Helper()
	now := time.Now().UTC()
	exp := now.Add(24 * time.Hour)
	devices := []string{"Firefox on Linux", "Safari on iOS", "Chrome on Windows", "Chrome on Android"}
	const batch = 1000
	err := db.Transaction(func(tx *gorm.DB) error {
		rows := make([]gormsession.Model, 0, batch)
		for i := range n + anon {
			user, seq := "", int64(0)
			if i < n {
				// In the change feed, committed long before (on
				// PostgreSQL, by a transaction older than any running).
				user, seq = "user-"+strconv.Itoa(i/4), 1
			}
			rows = append(rows, gormsession.Model{
				ID:        gormsession.HashToken(token(i)),
				UserID:    user,
				Device:    devices[i%len(devices)],
				CreatedAt: now,
				UpdatedAt: now,
				ExpiresAt: &exp,
				Seq:       seq,
			})
			if len(rows) == batch || i == n+anon-1 {
				if err := tx.Table(table).Create(&rows).Error; err != nil {
					return err
				}
				rows = rows[:0]
			}
		}
		return nil
	})
	if err != nil {
		b.Fatalf("fill %d sessions: %v", n, err)
	}
}

// BenchmarkIdlePoll measures one poll of the change feed on a table of
// 100,000 and of 1,000,000 sessions none of which changed: the cost a
// Manager pays every SyncInterval (by default once a second) when nothing
// happens.
func BenchmarkIdlePoll(b *testing.B) {
	for _, n := range []int{100_000, envInt(b, "GORMSESSION_BENCH_LARGE", 1_000_000)} {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			benchTable(b, n, func(b *testing.B, ctx context.Context, st *gormsession.Store, _ []string) {
				head, err := st.Head(ctx)
				if err != nil {
					b.Fatal(err)
				}
				for b.Loop() {
					if _, err := st.Changes(ctx, head.Cursor, func(*gormsession.Session, bool) error { return nil }); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkPollChanges measures a poll that carries 1,000 changes (the
// activity of 1,000 sessions, written by one Touch between polls, not
// timed) on a table of 100,000 sessions. rows/op is what each poll read.
func BenchmarkPollChanges(b *testing.B) {
	const changed = 1000
	benchTable(b, 100_000, func(b *testing.B, ctx context.Context, st *gormsession.Store, ids []string) {
		head, err := st.Head(ctx)
		if err != nil {
			b.Fatal(err)
		}
		cursor, rows, at := head.Cursor, 0, time.Now().UTC()
		for b.Loop() {
			b.StopTimer()
			at = at.Add(time.Second)
			if err := st.Touch(ctx, ids[:changed], at); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			pos, err := st.Changes(ctx, cursor, func(*gormsession.Session, bool) error { rows++; return nil })
			if err != nil {
				b.Fatal(err)
			}
			cursor = pos.Cursor
		}
		b.ReportMetric(float64(rows)/float64(b.N), "rows/op")
	})
}

// BenchmarkIdleCleanup measures one removal of expired sessions and old
// tombstones on a table of 100,000 live sessions: what each instance's
// cleanup costs every CleanupInterval (5 minutes) when there is nothing to
// remove.
func BenchmarkIdleCleanup(b *testing.B) {
	benchTable(b, 100_000, func(b *testing.B, ctx context.Context, st *gormsession.Store, _ []string) {
		for b.Loop() {
			if _, err := st.RemoveExpired(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchTable runs bench on a table of n unchanging signed-in sessions
// (whose IDs it is given), on SQLite and on PostgreSQL.
func benchTable(b *testing.B, n int, bench func(*testing.B, context.Context, *gormsession.Store, []string)) {
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(name, func(b *testing.B) {
			tdb := benchDB(b, name)
			db := tdb.Open(b)
			st := newStore(b, tdb, db)
			fillSessions(b, db, tdb.Table, n, 0)
			// Statistics, as the database keeps them for a table in use
			// (PostgreSQL's autovacuum; SQLite has none to gather).
			if name == "postgres" {
				if err := db.Exec("ANALYZE " + tdb.Table).Error; err != nil {
					b.Fatal(err)
				}
			}
			ids := make([]string, min(n, 1000))
			for i := range ids {
				ids[i] = gormsession.HashToken(strconv.Itoa(i))
			}
			b.ReportAllocs()
			bench(b, context.Background(), st, ids)
		})
	}
}

// benchDB returns the named test database ("sqlite" or "postgres").
func benchDB(b *testing.B, name string) testDB {
	if name == "sqlite" {
		return newSQLite(b)
	}
	return newPostgres(b)
}

// floorEntry is what the floor of a lookup reads: a value inline in the
// map, then the user ID.
type floorEntry struct {
	user    string
	expires int64
}

// resolveFloor is the least work a lookup by token can do: hash the token
// and probe a map keyed by the digest, with the value inline.
func resolveFloor(m map[[32]byte]floorEntry, token string) (string, bool) {
	var buf [43]byte // a token's length; copied so that hashing allocates nothing
	copy(buf[:], token)
	e, ok := m[sha256.Sum256(buf[:len(token)])]
	return e.user, ok
}

// scaleToken returns the i-th token of the scale benchmarks: 32 bytes of a
// hash of i, in the form NewToken makes.
func scaleToken(i int) string {
	sum := sha256.Sum256([]byte("scale-" + strconv.Itoa(i)))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// BenchmarkResolveAtScale resolves tokens drawn at random from 4,096 of n
// loaded sessions, so that lookups miss the CPU caches as a busy server's
// do, beside the floor (resolveFloor) on a map of the same n entries in
// the same process. n is 1,000, 100,000 and 1,000,000 (about a minute to
// fill and load), and GORMSESSION_RESOLVE_N (say 4000000) adds one more
// size.
//
//	go test -run '^$' -bench ResolveAtScale -benchtime 2s
func BenchmarkResolveAtScale(b *testing.B) {
	sizes := []int{1_000, 100_000, 1_000_000}
	if n := envInt(b, "GORMSESSION_RESOLVE_N", 0); n > 0 {
		sizes = append(sizes, n)
	}
	for _, n := range sizes {
		tdb := newSQLite(b)
		db := tdb.Open(b)
		st := newStore(b, tdb, db)
		fillRows(b, db, tdb.Table, n, 0, scaleToken)
		m := newManager(b, st, gormsession.ManagerOptions{CleanupInterval: -1, SyncInterval: -1})
		floor := make(map[[32]byte]floorEntry, n)
		for i := range n {
			floor[sha256.Sum256([]byte(scaleToken(i)))] = floorEntry{user: "user-" + strconv.Itoa(i/4), expires: 1}
		}
		sample := make([]string, 4096)
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range sample {
			sample[i] = scaleToken(rng.IntN(n))
		}
		ctx := context.Background()
		b.Run(fmt.Sprintf("resolve/%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, ok := m.Resolve(ctx, sample[i&4095]); !ok {
					b.Fatal("miss")
				}
			}
		})
		b.Run(fmt.Sprintf("floor/%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, ok := resolveFloor(floor, sample[i&4095]); !ok {
					b.Fatal("miss")
				}
			}
		})
	}
}

// BenchmarkSQLitePagesPerWrite reports the pages one write puts in
// SQLite's write-ahead log: every B-tree (the table and each index) a
// statement changes costs at least one. Creating a session writes the
// table, its primary-key index and the indexes on user_id, updated_at and
// expires_at; changing one writes the table and the indexes of the columns
// it changes (updated_at always, expires_at when the expiry moves). An
// anonymous session is left out of the partial indexes on user_id and
// updated_at until it first changes, so creating one writes three B-trees.
func BenchmarkSQLitePagesPerWrite(b *testing.B) {
	for _, op := range []string{"insert", "insert-anonymous", "update-data", "update-data-and-expiry"} {
		b.Run(op, func(b *testing.B) {
			tdb := newSQLite(b)
			db := tdb.Open(b)
			st := newStore(b, tdb, db)
			ctx := context.Background()
			var s gormsession.Session
			fresh := func(i int) gormsession.Session {
				now := time.Now().UTC().Truncate(time.Microsecond)
				return gormsession.Session{ID: gormsession.HashToken(scaleToken(i)), UserID: "user-" + strconv.Itoa(i%1000),
					CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(time.Hour)}
			}
			// A table that is not empty, as in use.
			for i := range 2000 {
				s = fresh(i)
				if err := st.Insert(ctx, &s); err != nil {
					b.Fatal(err)
				}
			}
			walPath, _, _ := strings.Cut(tdb.DSN, "?")
			walPath += "-wal"
			var pageSize int64
			if err := db.Raw("PRAGMA page_size").Scan(&pageSize).Error; err != nil {
				b.Fatal(err)
			}
			// One connection, which never checkpoints: the log then holds
			// every page written, whatever the size.
			sqlDB, _ := db.DB()
			sqlDB.SetMaxOpenConns(1)
			if err := db.Exec("PRAGMA wal_autocheckpoint=0").Error; err != nil {
				b.Fatal(err)
			}
			if err := db.Exec("PRAGMA wal_checkpoint(TRUNCATE)").Error; err != nil {
				b.Fatal(err)
			}
			n := 0
			for i := 0; b.Loop(); i++ {
				switch op {
				case "insert", "insert-anonymous":
					s = fresh(1_000_000 + i)
					if op == "insert-anonymous" {
						s.UserID = ""
					}
					if err := st.Insert(ctx, &s); err != nil {
						b.Fatal(err)
					}
				default:
					s.Data = []byte("v" + strconv.Itoa(i))
					s.UpdatedAt = s.UpdatedAt.Add(time.Millisecond)
					if op == "update-data-and-expiry" {
						s.ExpiresAt = s.ExpiresAt.Add(time.Second)
					}
					if err := st.Update(ctx, &s); err != nil {
						b.Fatal(err)
					}
				}
				n++
			}
			fi, err := os.Stat(walPath)
			if err != nil {
				b.Fatal(err)
			}
			frames := (fi.Size() - 32) / (24 + pageSize)
			b.ReportMetric(float64(frames)/float64(n), "pages/op")
		})
	}
}
