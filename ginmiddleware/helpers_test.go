package ginmiddleware_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/goleak"
	"gorm.io/gorm"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/internal/testdb"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	goleak.VerifyTestMain(m)
}

// env is a Manager on a real database with a settable clock and a count
// of the SQL statements it runs.
type env struct {
	m     *gormsession.Manager
	store *gormsession.Store
	sql   *testdb.Counter
	now   atomic.Int64
	table string
}

func (e *env) Now() time.Time      { return time.Unix(0, e.now.Load()) }
func (e *env) Add(d time.Duration) { e.now.Add(int64(d)) }

// newEnv returns a Manager on the test's own table of d (testdb.SQLite,
// or testdb.Postgres, whose table is dropped when the test ends); the
// Manager is closed when the test ends.
func newEnv(t testing.TB, d testdb.DB) *env {
	t.Helper()
	e := &env{sql: testdb.NewCounter(), table: d.Table}
	e.now.Store(time.Now().UnixNano())
	db := d.Open(t).Session(&gorm.Session{Logger: e.sql})
	st, err := gormsession.NewStore(db, gormsession.StoreOptions{TableName: e.table})
	if err != nil {
		t.Fatalf("NewStore: %v", err)
	}
	m, err := gormsession.NewManager(context.Background(), st, gormsession.ManagerOptions{Now: e.Now, SyncInterval: -1})
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close the Manager: %v", err)
		}
	})
	e.m, e.store = m, st
	return e
}

// restart returns a new Manager on the same table, as a restarted process
// would have.
func (e *env) restart(t testing.TB) *gormsession.Manager {
	t.Helper()
	m, err := gormsession.NewManager(context.Background(), e.store, gormsession.ManagerOptions{Now: e.Now, SyncInterval: -1})
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close the Manager: %v", err)
		}
	})
	return m
}

func (e *env) create(t testing.TB, p gormsession.Attributes) gormsession.Session {
	t.Helper()
	s, err := e.m.Create(context.Background(), p)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return s
}

// decode reads a JSON response body into a map.
func decode(t testing.TB, resp *http.Response) map[string]any {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	var v map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("body %q is not JSON: %v", b, err)
		}
	}
	return v
}

// do sends req with client and fails the test on a transport error.
func do(t testing.TB, client *http.Client, req *http.Request) *http.Response {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	return resp
}

func newRequest(t testing.TB, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// findCookie returns the Set-Cookie of resp named name.
func findCookie(t testing.TB, resp *http.Response, name string) *http.Cookie {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no Set-Cookie %q in %q", name, resp.Header.Values("Set-Cookie"))
	return nil
}
