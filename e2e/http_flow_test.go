package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gormsession/gormsession/internal/testdb"

	"gorm.io/gorm"
)

// postgresDSN returns the PostgreSQL to test on and a connection to it. It
// skips the test when the database is unreachable, unless
// GORMSESSION_REQUIRE_DB names postgres.
func postgresDSN(t *testing.T) (string, *gorm.DB) {
	t.Helper()
	dsn := testdb.PostgresDSN()
	return dsn, testdb.DB{Name: "postgres", DSN: dsn}.Open(t)
}

// httpUser is a browser-like client: a cookie jar, redirects followed.
type httpUser struct {
	t *testing.T
	c *http.Client
}

func newHTTPUser(t *testing.T) *httpUser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &httpUser{t: t, c: &http.Client{Jar: jar, Timeout: time.Minute}}
}

// do sends a request and returns the status, the final path after
// redirects and the body.
func (u *httpUser) do(method, target string, form url.Values, header http.Header) (status int, path, body string) {
	u.t.Helper()
	var rd io.Reader
	if form != nil {
		rd = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, rd)
	if err != nil {
		u.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := u.c.Do(req)
	if err != nil {
		u.t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		u.t.Fatal(err)
	}
	return resp.StatusCode, resp.Request.URL.Path, string(b)
}

// page GETs a page and fails unless it answers 200 at path containing want.
func (u *httpUser) page(target, wantPath, want string) string {
	u.t.Helper()
	status, path, body := u.do(http.MethodGet, target, nil, nil)
	if status != http.StatusOK || path != wantPath || !strings.Contains(body, want) {
		u.t.Fatalf("GET %s: %d at %s, want 200 at %s containing %q; body:\n%s", target, status, path, wantPath, want, body)
	}
	return body
}

// api sends a JSON API request with a bearer token ("" for none) and
// decodes the answer into out (when not nil).
func api(t *testing.T, method, target, token, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: decode: %v", method, target, err)
		}
	}
	return resp.StatusCode
}

// TestHTTPFlowOnPostgres runs the browser test's flow with plain HTTP
// against the app on PostgreSQL: sign in through the form, devices, the
// visit counter, the JSON API, kill -9 and restart with everyone still
// signed in, sign out, and a clean stop on SIGTERM.
func TestHTTPFlowOnPostgres(t *testing.T) {
	dsn, db := postgresDSN(t)
	table := testdb.UniqueName("gs_e2e_app_")
	testdb.DropOnCleanup(t, db, table)
	app := StartApp(t, AppOptions{DatabaseURL: dsn, Args: []string{"-table", table}})
	base := app.BaseURL

	alice := newHTTPUser(t)
	alice.page(base+"/", "/signin", "Demo accounts")
	status, path, body := alice.do(http.MethodPost, base+"/signin", url.Values{"username": {"alice"}, "password": {"nope"}}, nil)
	if status != http.StatusUnauthorized || !strings.Contains(body, "Wrong username or password") {
		t.Fatalf("wrong password: %d at %s", status, path)
	}
	status, path, body = alice.do(http.MethodPost, base+"/signin", url.Values{"username": {"alice"}, "password": {"password"}}, nil)
	if status != http.StatusOK || path != "/" || !strings.Contains(body, "Hello, alice!") {
		t.Fatalf("sign in: %d at %s, want the home page; body:\n%s", status, path, body)
	}
	devices := alice.page(base+"/devices", "/devices", "this device")
	if !strings.Contains(devices, "Go-http-client") {
		t.Fatalf("devices page does not name this client:\n%s", devices)
	}
	var rows int64
	if err := db.Table(table).Where("user_id = ? AND revoked_at IS NULL", "alice").Count(&rows).Error; err != nil || rows != 1 {
		t.Fatalf("alice's rows in %s: %d, %v; want 1", table, rows, err)
	}
	alice.page(base+"/visits", "/visits", `<strong id="count">1</strong>`)
	alice.page(base+"/visits", "/visits", `<strong id="count">2</strong>`)

	var login struct{ Token string }
	if status := api(t, http.MethodPost, base+"/api/login", "", `{"username":"bob","password":"wrong"}`, nil); status != http.StatusUnauthorized {
		t.Fatalf("API login with a wrong password: %d, want 401", status)
	}
	if status := api(t, http.MethodPost, base+"/api/login", "", `{"username":"bob","password":"password"}`, &login); status != http.StatusOK || login.Token == "" {
		t.Fatalf("API login: %d, token %q", status, login.Token)
	}
	if status := api(t, http.MethodGet, base+"/api/me", "", "", nil); status != http.StatusUnauthorized {
		t.Fatalf("GET /api/me without a token: %d, want 401", status)
	}

	app.Kill()
	app.Restart()

	alice.page(base+"/", "/", "Hello, alice!")
	alice.page(base+"/visits", "/visits", `<strong id="count">3</strong>`)
	var me struct{ User string }
	if status := api(t, http.MethodGet, base+"/api/me", login.Token, "", &me); status != http.StatusOK || me.User != "bob" {
		t.Fatalf("GET /api/me after the restart: %d, user %q; want 200, bob", status, me.User)
	}
	var list struct {
		Sessions []struct {
			ID      string
			Current bool
		}
	}
	if status := api(t, http.MethodGet, base+"/api/sessions", login.Token, "", &list); status != http.StatusOK || len(list.Sessions) != 1 || !list.Sessions[0].Current {
		t.Fatalf("GET /api/sessions: %d, %+v; want bob's one session, current", status, list)
	}
	if status := api(t, http.MethodPost, base+"/api/logout", login.Token, "", nil); status != http.StatusNoContent {
		t.Fatalf("POST /api/logout: %d, want 204", status)
	}
	if status := api(t, http.MethodGet, base+"/api/me", login.Token, "", nil); status != http.StatusUnauthorized {
		t.Fatalf("GET /api/me after logout: %d, want 401", status)
	}

	alice.page(base+"/", "/", "Hello, alice!")
	status, path, _ = alice.do(http.MethodPost, base+"/signout", url.Values{}, nil)
	if status != http.StatusOK || path != "/signin" {
		t.Fatalf("sign out: %d at %s, want the sign-in page", status, path)
	}
	u, _ := url.Parse(base)
	for _, c := range alice.c.Jar.Cookies(u) {
		if c.Name == "session" {
			t.Fatalf("session cookie still in the jar after sign-out: %v", c)
		}
	}
	alice.page(base+"/devices", "/signin", "Demo accounts")

	if err := app.Stop(); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	if log := app.Log(); !strings.Contains(log, `msg="shutting down"`) || !strings.Contains(log, "msg=stopped") {
		t.Fatalf("no clean shutdown in the log:\n%s", log)
	}
	// Every session of the run is gone from the database, none is left behind.
	if err := db.Table(table).Where("revoked_at IS NULL AND user_id <> ''").Count(&rows).Error; err != nil || rows != 0 {
		t.Fatalf("signed-in rows left in %s: %d, %v; want 0", table, rows, err)
	}
}
