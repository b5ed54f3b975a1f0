package gorillastore_test

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
	"github.com/gormsession/gormsession/gorillastore"
)

// exampleManager opens a SQLite file in a temporary directory and returns a
// Manager on it, and a function that closes both.
func exampleManager() (*gormsession.Manager, func()) {
	dir, err := os.MkdirTemp("", "gorillastore-example")
	if err != nil {
		log.Fatal(err)
	}
	dsn := filepath.Join(dir, "sessions.db") + "?_journal_mode=WAL&_busy_timeout=10000"
	db, err := gorm.Open(sqlite.Open(dsn), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		log.Fatal(err)
	}
	backend, err := gormsession.NewStore(db, gormsession.StoreOptions{})
	if err != nil {
		log.Fatal(err)
	}
	m, err := gormsession.NewManager(context.Background(), backend, gormsession.ManagerOptions{})
	if err != nil {
		log.Fatal(err)
	}
	return m, func() {
		if err := m.Close(); err != nil {
			log.Fatal(err)
		}
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
		if err := os.RemoveAll(dir); err != nil {
			log.Fatal(err)
		}
	}
}

func Example() {
	m, done := exampleManager()
	defer done()
	// In a real program the key comes from configuration, and stays the
	// same across restarts.
	store := gorillastore.New(m, []byte("a hash key of 32 or 64 bytes...."))

	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		session, _ := store.Get(r, "session") // a bad cookie gives a new session
		visits, _ := session.Values["visits"].(int)
		session.Values["visits"] = visits + 1
		if err := session.Save(r, w); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Printf("visit %d (new session: %v)\n", visits+1, session.IsNew)
	})

	// Two requests from one browser: the second sends the cookie back.
	w := httptest.NewRecorder()
	handler.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	r := httptest.NewRequest("GET", "/", nil)
	for _, c := range w.Result().Cookies() {
		r.AddCookie(c)
	}
	handler.ServeHTTP(httptest.NewRecorder(), r)
	// Output:
	// visit 1 (new session: true)
	// visit 2 (new session: false)
}

// Log out: a negative MaxAge deletes the stored session and the cookie.
func ExampleStore_Save_logout() {
	m, done := exampleManager()
	defer done()
	store := gorillastore.New(m, []byte("a hash key of 32 or 64 bytes...."))

	// A signed-in browser.
	r := httptest.NewRequest("GET", "/", nil)
	session, _ := store.Get(r, "session")
	session.Values["user"] = "alice"
	w := httptest.NewRecorder()
	if err := session.Save(r, w); err != nil {
		log.Fatal(err)
	}
	fmt.Println("sessions:", m.Stats().Anonymous)

	// Its logout request.
	r = httptest.NewRequest("POST", "/logout", nil)
	r.AddCookie(w.Result().Cookies()[0])
	session, _ = store.Get(r, "session")
	session.Options.MaxAge = -1
	w = httptest.NewRecorder()
	if err := session.Save(r, w); err != nil {
		log.Fatal(err)
	}
	fmt.Println("sessions:", m.Stats().Anonymous)
	fmt.Println("cookie Max-Age:", w.Result().Cookies()[0].MaxAge)
	// Output:
	// sessions: 1
	// sessions: 0
	// cookie Max-Age: -1
}

// Key rotation: the new key pair comes first, the old one after it.
func ExampleNew_keyRotation() {
	m, done := exampleManager()
	defer done()
	oldKey := []byte("the old hash key of 32 bytes....")
	newHash, newBlock := []byte("the new hash key of 32 bytes...."), []byte("a 32-byte AES-256 encryption key")

	old := gorillastore.New(m, oldKey)
	r := httptest.NewRequest("GET", "/", nil)
	session, _ := old.Get(r, "session")
	session.Values["user"] = "alice"
	w := httptest.NewRecorder()
	if err := session.Save(r, w); err != nil {
		log.Fatal(err)
	}

	rotated := gorillastore.New(m, newHash, newBlock, oldKey, nil)
	r = httptest.NewRequest("GET", "/", nil)
	r.AddCookie(w.Result().Cookies()[0])
	session, err := rotated.Get(r, "session")
	fmt.Println(session.Values["user"], err)
	// Output:
	// alice <nil>
}

// The JSON codec stores readable values and needs no gob registration.
func ExampleJSONSerializer() {
	data, err := gorillastore.JSONSerializer{}.Encode(map[any]any{"user": "alice", "visits": 3})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(data))
	values, _ := gorillastore.JSONSerializer{}.Decode(data)
	fmt.Printf("%T %v\n", values["visits"], values["visits"])
	// Output:
	// {"user":"alice","visits":3}
	// int 3
}
