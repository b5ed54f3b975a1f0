package gormsession_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/gormsession/gormsession"
)

func Example() {
	dir, _ := os.MkdirTemp("", "gormsession-example")
	defer removeAll(dir)
	open := func() *gorm.DB {
		db, err := gorm.Open(sqlite.Open(filepath.Join(dir, "sessions.db")+"?_journal_mode=WAL&_busy_timeout=5000"),
			&gorm.Config{Logger: logger.Discard})
		if err != nil {
			log.Fatal(err)
		}
		return db
	}
	closeDB := func(db *gorm.DB) {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	}
	ctx := context.Background()

	db := open()
	defer closeDB(db)
	store, err := gormsession.NewStore(db, gormsession.StoreOptions{})
	if err != nil {
		log.Fatal(err)
	}
	m, err := gormsession.NewManager(ctx, store, gormsession.ManagerOptions{})
	if err != nil {
		log.Fatal(err)
	}
	s, err := m.Create(ctx, gormsession.Attributes{UserID: "alice", Device: "Firefox on Linux"})
	if err != nil {
		log.Fatal(err)
	}
	closeManager(m)

	// A new process on the same database: the token still resolves.
	db2 := open()
	defer closeDB(db2)
	store2, _ := gormsession.NewStore(db2, gormsession.StoreOptions{})
	m2, _ := gormsession.NewManager(ctx, store2, gormsession.ManagerOptions{})
	defer closeManager(m2)
	got, ok := m2.Resolve(context.Background(), s.Token)
	fmt.Println(got.UserID, got.Device, ok)
	// Output: alice Firefox on Linux true
}

func ExampleMiddleware() {
	dir, _ := os.MkdirTemp("", "gormsession-example")
	defer removeAll(dir)
	db, _ := gorm.Open(sqlite.Open(filepath.Join(dir, "sessions.db")), &gorm.Config{Logger: logger.Discard})
	sqlDB, _ := db.DB()
	defer sqlDB.Close()
	store, _ := gormsession.NewStore(db, gormsession.StoreOptions{})
	m, _ := gormsession.NewManager(context.Background(), store, gormsession.ManagerOptions{})
	defer closeManager(m)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /me", func(w http.ResponseWriter, r *http.Request) {
		s, ok := gormsession.FromContext(r.Context())
		if !ok {
			http.Error(w, "sign in first", http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, "hello %s", s.UserID)
	})
	handler := gormsession.Middleware(m, gormsession.CookieOptions{})(mux)

	s, _ := m.Create(context.Background(), gormsession.Attributes{UserID: "alice"})
	req := httptest.NewRequest("GET", "/me", nil)
	req.Header.Set("Authorization", "Bearer "+s.Token)
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	fmt.Println(rec.Code, rec.Body.String())
	// Output: 200 hello alice
}

func ExampleManager_Rotate() {
	dir, _ := os.MkdirTemp("", "gormsession-example")
	defer removeAll(dir)
	db, _ := gorm.Open(sqlite.Open(filepath.Join(dir, "sessions.db")), &gorm.Config{Logger: logger.Discard})
	sqlDB, _ := db.DB()
	defer sqlDB.Close()
	store, _ := gormsession.NewStore(db, gormsession.StoreOptions{})
	ctx := context.Background()
	m, _ := gormsession.NewManager(ctx, store, gormsession.ManagerOptions{})
	defer closeManager(m)

	s, _ := m.Create(ctx, gormsession.Attributes{UserID: "alice", Data: []byte("cart=3")})
	// After a privilege change, replace the token.
	r, _ := m.Rotate(ctx, s.Token)
	_, oldOK := m.Resolve(context.Background(), s.Token)
	n, newOK := m.Resolve(context.Background(), r.Token)
	fmt.Println(oldOK, newOK, string(n.Data))
	// Output: false true cart=3
}

// removeAll removes the example's temporary directory.
func removeAll(dir string) {
	if err := os.RemoveAll(dir); err != nil {
		log.Fatal(err)
	}
}

// closeManager closes m, which stops its background work.
func closeManager(m *gormsession.Manager) {
	if err := m.Close(); err != nil {
		log.Fatal(err)
	}
}
