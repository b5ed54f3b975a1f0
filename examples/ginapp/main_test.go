package main

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/securecookie"
	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/examples/internal/exampleapp"
)

func init() {
	// Cheap hashes: the race detector makes bcrypt twenty times slower.
	bcryptCost = bcrypt.MinCost
}

// startTestApp serves the app on a SQLite file in a temporary directory.
func startTestApp(t *testing.T) (*httptest.Server, *gorm.DB) {
	t.Helper()
	return startTestAppOn(t, filepath.Join(t.TempDir(), "sessions.db"), []byte(strings.Repeat("k", 32)))
}

// startTestAppOn serves the app on the SQLite file at path, with the
// cookie key key (nil: the key kept in the database).
func startTestAppOn(t *testing.T, path string, key []byte) (*httptest.Server, *gorm.DB) {
	t.Helper()
	db, err := exampleapp.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	a, err := newApp(context.Background(), db, config{insecureCookies: true, sessionKey: key})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.routes())
	t.Cleanup(func() {
		srv.Close()
		if err := a.m.Close(); err != nil {
			t.Errorf("close the Manager: %v", err)
		}
		sqlDB.Close()
	})
	return srv, db
}

func newClient(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar}
}

// fetcher returns a function that takes what an http.Client method
// returns and gives the status and body of the response.
func fetcher(t *testing.T) func(*http.Response, error) (int, string) {
	return func(resp *http.Response, err error) (int, string) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(body)
	}
}

func signIn(c *http.Client, base, user, password string) (*http.Response, error) {
	return c.PostForm(base+"/signin", url.Values{"username": {user}, "password": {password}})
}

func TestSignInShowsHomeAndDevices(t *testing.T) {
	srv, _ := startTestApp(t)
	c, fetch := newClient(t), fetcher(t)

	status, body := fetch(c.Get(srv.URL + "/"))
	if status != http.StatusOK || !strings.Contains(body, "Demo accounts") {
		t.Fatalf("anonymous home: %d, want the sign-in page; body:\n%s", status, body)
	}
	status, body = fetch(signIn(c, srv.URL, "alice", "wrong"))
	if status != http.StatusUnauthorized || !strings.Contains(body, "Wrong username or password") {
		t.Fatalf("bad password: %d\n%s", status, body)
	}
	status, body = fetch(signIn(c, srv.URL, "alice", "password"))
	if status != http.StatusOK || !strings.Contains(body, "Hello, alice!") {
		t.Fatalf("sign in: %d, want the home page; body:\n%s", status, body)
	}
	status, body = fetch(c.Get(srv.URL + "/devices"))
	if status != http.StatusOK || !strings.Contains(body, "Go-http-client") || !strings.Contains(body, "this device") {
		t.Fatalf("devices: %d\n%s", status, body)
	}
	status, body = fetch(c.PostForm(srv.URL+"/signout", nil))
	if status != http.StatusOK || !strings.Contains(body, "Demo accounts") {
		t.Fatalf("sign out: %d, want the sign-in page; body:\n%s", status, body)
	}
}

func TestUnreachableDatabaseAnswers503(t *testing.T) {
	srv, db := startTestApp(t)
	signedIn, fetch := newClient(t), fetcher(t)
	if status, _ := fetch(signIn(signedIn, srv.URL, "alice", "password")); status != http.StatusOK {
		t.Fatalf("sign in: %d", status)
	}

	sqlDB, _ := db.DB()
	sqlDB.Close() // every write fails from now on

	for _, tt := range []struct {
		name string
		do   func(c *http.Client) (*http.Response, error)
	}{
		{"sign in", func(c *http.Client) (*http.Response, error) { return signIn(c, srv.URL, "bob", "password") }},
		{"visit counter", func(c *http.Client) (*http.Response, error) { return c.Get(srv.URL + "/visits") }},
		{"api login", func(c *http.Client) (*http.Response, error) {
			return c.Post(srv.URL+"/api/login", "application/json", strings.NewReader(`{"username":"bob","password":"password"}`))
		}},
	} {
		status, body := fetch(tt.do(newClient(t)))
		if status != http.StatusServiceUnavailable {
			t.Errorf("%s: %d, want 503; body:\n%s", tt.name, status, body)
		}
	}
	// Reads are served from memory: the signed-in user still gets pages.
	if status, body := fetch(signedIn.Get(srv.URL + "/")); status != http.StatusOK || !strings.Contains(body, "Hello, alice!") {
		t.Fatalf("home while the database is down: %d\n%s", status, body)
	}
}

func TestInsecureCookiesDefault(t *testing.T) {
	for _, tt := range []struct {
		value, addr string
		want        bool
	}{
		{"", ":8080", true},
		{"", "127.0.0.1:8080", true},
		{"", "[::1]:8080", true},
		{"", "localhost:8080", true},
		{"", "0.0.0.0:8080", true},
		{"", "192.0.2.10:443", false},
		{"", "example.com:443", false},
		{"false", ":8080", false},
		{"true", "192.0.2.10:80", true},
	} {
		got, err := insecureCookies(tt.value, tt.addr)
		if err != nil || got != tt.want {
			t.Errorf("insecureCookies(%q, %q) = %v, %v; want %v", tt.value, tt.addr, got, err, tt.want)
		}
	}
}

// TestVisitorTokenDoesNotSignIn replays the token inside the visits
// cookie (signed, not encrypted, so readable) as a bearer token and as the
// sign-in cookie: neither authenticates.
func TestVisitorTokenDoesNotSignIn(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	srv, _ := startTestAppOn(t, filepath.Join(t.TempDir(), "sessions.db"), key)
	c, fetch := newClient(t), fetcher(t)
	if code, _ := fetch(c.Get(srv.URL + "/visits")); code != http.StatusOK {
		t.Fatalf("GET /visits: %d", code)
	}
	u, _ := url.Parse(srv.URL)
	var token []byte
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "visits" {
			sc := securecookie.New(key, nil).SetSerializer(securecookie.NopEncoder{})
			if err := sc.Decode("visits", ck.Value, &token); err != nil {
				t.Fatalf("decode the visits cookie: %v", err)
			}
		}
	}
	if !gormsession.ValidToken(string(token)) {
		t.Fatalf("the visits cookie carries %q, not a token", token)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/me", nil)
	req.Header.Set("Authorization", "Bearer "+string(token))
	if code, body := fetch(http.DefaultClient.Do(req)); code != http.StatusUnauthorized {
		t.Fatalf("visitor token as bearer: %d %s, want 401", code, body)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, path := range []string{"/", "/api/me"} {
		req, _ = http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.AddCookie(&http.Cookie{Name: gormsession.DefaultCookieName, Value: string(token)})
		if code, body := fetch(noRedirect.Do(req)); code == http.StatusOK {
			t.Fatalf("visitor token as the sign-in cookie: GET %s answered 200: %s", path, body)
		}
	}
}

// TestMetricsExposeTheSessions signs in and reads /metrics.
func TestMetricsExposeTheSessions(t *testing.T) {
	srv, _ := startTestApp(t)
	c, fetch := newClient(t), fetcher(t)
	if code, _ := fetch(signIn(c, srv.URL, "alice", "password")); code != http.StatusOK {
		t.Fatalf("sign-in: %d", code)
	}
	if code, _ := fetch(http.Get(srv.URL + "/visits")); code != http.StatusOK {
		t.Fatalf("GET /visits: %d", code)
	}
	code, body := fetch(http.Get(srv.URL + "/metrics"))
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", code)
	}
	for _, want := range []string{
		`gormsession_sessions{kind="signed_in"} 1`,
		`gormsession_sessions{kind="anonymous"} 1`,
		"gormsession_pending_revocations 0",
		"gormsession_sync_ok 1",
		"gormsession_anonymous_evictions_total 0",
		"gormsession_lookups_total",
		"go_goroutines",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestSyncLabelIsTheEffectiveInterval: the start-up log says how often the
// app reads other instances' changes, not the flag's 0.
func TestSyncLabelIsTheEffectiveInterval(t *testing.T) {
	for _, tt := range []struct {
		flag    time.Duration
		syncing bool
		want    string
	}{
		{0, true, "1s"},
		{250 * time.Millisecond, true, "250ms"},
		{-1, false, "off"},
		{0, false, "off"},
	} {
		if got := syncLabel(tt.flag, tt.syncing); got != tt.want {
			t.Errorf("syncLabel(%v, %v) = %q, want %q", tt.flag, tt.syncing, got, tt.want)
		}
	}
}
