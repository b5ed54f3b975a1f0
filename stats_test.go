package gormsession_test

import (
	"context"
	"testing"
	"time"

	"github.com/gormsession/gormsession"
)

func TestStatsReportsTheManagersState(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		m := newManager(t, newStore(t, tdb, nil), gormsession.ManagerOptions{
			MaxAnonymous: 2, SyncInterval: time.Hour, ReadThroughRate: 1,
		})
		a := create(t, m, gormsession.Attributes{UserID: "alice"})
		create(t, m, gormsession.Attributes{UserID: "bob"})
		for range 3 {
			create(t, m, gormsession.Attributes{})
		}
		st := m.Stats()
		if st.SignedIn != 2 || st.Anonymous != 2 || st.AnonymousEvictions != 1 {
			t.Fatalf("Stats = %+v; want 2 signed in, 2 anonymous, 1 eviction", st)
		}
		if !st.Syncing || st.LastSync.IsZero() || st.LastSyncError != nil {
			t.Fatalf("Stats = %+v; want syncing since the start, no error", st)
		}
		// Unknown tokens: the first is looked up, the second refused by
		// the rate limit (1 a second).
		m.Resolve(context.Background(), gormsession.NewToken())
		m.Resolve(context.Background(), gormsession.NewToken())
		if st = m.Stats(); st.Lookups != 1 || st.LookupsRefused != 1 {
			t.Fatalf("after two unknown tokens Stats = %+v; want 1 lookup, 1 refused", st)
		}

		repair := breakTable(t, tdb)
		if err := m.Revoke(ctx, a.ID); err == nil {
			t.Fatal("Revoke on a broken table succeeded")
		}
		if err := m.Sync(ctx); err == nil {
			t.Fatal("a poll of a broken table succeeded")
		}
		st = m.Stats()
		if st.PendingRevocations != 1 || st.SyncErrors != 1 || st.LastSyncError == nil {
			t.Fatalf("with the table broken Stats = %+v; want 1 pending revocation, 1 sync error", st)
		}
		repair()
		before := st.LastSync
		if err := m.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Cleanup(ctx); err != nil {
			t.Fatal(err)
		}
		st = m.Stats()
		if st.PendingRevocations != 0 || st.LastSyncError != nil || !st.LastSync.After(before) || st.SignedIn != 1 {
			t.Fatalf("after repair Stats = %+v; want nothing pending, no error, a later sync, 1 signed in", st)
		}
	})
}
