package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// apiLoginToken signs in through POST /api/login and returns the token.
func apiLoginToken(t *testing.T, base, user string) string {
	t.Helper()
	resp, err := http.Post(base+"/api/login", "application/json",
		strings.NewReader(`{"username":"`+user+`","password":"password"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || out.Token == "" {
		t.Fatalf("api login of %s: %d, %v", user, resp.StatusCode, err)
	}
	return out.Token
}

// bearerRequest sends a request with a bearer token and returns the status
// and body.
func bearerRequest(t *testing.T, method, target, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return fetcher(t)(http.DefaultClient.Do(req))
}

// sessionIDs returns the IDs GET /api/sessions lists, and the current one.
func sessionIDs(t *testing.T, base, token string) (ids []string, current string) {
	t.Helper()
	status, body := bearerRequest(t, http.MethodGet, base+"/api/sessions", token)
	if status != http.StatusOK {
		t.Fatalf("GET /api/sessions: %d %s", status, body)
	}
	var out struct{ Sessions []apiSession }
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	for _, s := range out.Sessions {
		ids = append(ids, s.ID)
		if s.Current {
			current = s.ID
		}
	}
	return ids, current
}

func TestAPIDeleteSessionSignsOutAnotherDevice(t *testing.T) {
	srv, _ := startTestApp(t)
	phone, laptop := apiLoginToken(t, srv.URL, "alice"), apiLoginToken(t, srv.URL, "alice")
	bob := apiLoginToken(t, srv.URL, "bob")

	ids, laptopID := sessionIDs(t, srv.URL, laptop)
	if len(ids) != 2 {
		t.Fatalf("alice has %d sessions, want 2", len(ids))
	}
	var phoneID string
	for _, id := range ids {
		if id != laptopID {
			phoneID = id
		}
	}
	_, bobID := sessionIDs(t, srv.URL, bob)

	for _, tt := range []struct {
		name, id string
		want     int
	}{
		{"another user's session", bobID, http.StatusNotFound},
		{"an unknown ID", strings.Repeat("0", 64), http.StatusNotFound},
		{"a malformed ID", "not-an-id", http.StatusNotFound},
		{"an ID with a quote", url.PathEscape(`"';--`), http.StatusNotFound},
		{"the phone", phoneID, http.StatusNoContent},
		{"the phone again", phoneID, http.StatusNotFound},
	} {
		if status, body := bearerRequest(t, http.MethodDelete, srv.URL+"/api/sessions/"+tt.id, laptop); status != tt.want {
			t.Errorf("DELETE %s: %d %s, want %d", tt.name, status, body, tt.want)
		}
	}
	if status, _ := bearerRequest(t, http.MethodGet, srv.URL+"/api/me", phone); status != http.StatusUnauthorized {
		t.Errorf("the signed-out phone's token answers %d, want 401", status)
	}
	for _, token := range []string{laptop, bob} {
		if status, _ := bearerRequest(t, http.MethodGet, srv.URL+"/api/me", token); status != http.StatusOK {
			t.Errorf("a session not deleted answers %d, want 200", status)
		}
	}
	if status, _ := bearerRequest(t, http.MethodDelete, srv.URL+"/api/sessions/"+laptopID, "not-a-token"); status != http.StatusUnauthorized {
		t.Errorf("DELETE without a valid token: %d, want 401", status)
	}
}

func TestSignedOutElsewhereSeesNoticeOnce(t *testing.T) {
	srv, _ := startTestApp(t)
	browser, fetch := newClient(t), fetcher(t)
	if status, _ := fetch(signIn(browser, srv.URL, "alice", "password")); status != http.StatusOK {
		t.Fatal("sign in failed")
	}
	// From another device: sign out every session but that one.
	other := apiLoginToken(t, srv.URL, "alice")
	ids, current := sessionIDs(t, srv.URL, other)
	for _, id := range ids {
		if id != current {
			if status, _ := bearerRequest(t, http.MethodDelete, srv.URL+"/api/sessions/"+id, other); status != http.StatusNoContent {
				t.Fatalf("DELETE: %d", status)
			}
		}
	}

	status, body := fetch(browser.Get(srv.URL + "/devices"))
	if status != http.StatusOK || !strings.Contains(body, "You were signed out") {
		t.Fatalf("the signed-out browser: %d, want the sign-in page with a notice; body:\n%s", status, body)
	}
	if _, body := fetch(browser.Get(srv.URL + "/signin")); strings.Contains(body, "You were signed out") {
		t.Error("the notice is shown again after the dead cookie was deleted")
	}
	// A visitor who never signed in, and one who signed out here, see none.
	if _, body := fetch(newClient(t).Get(srv.URL + "/signin")); strings.Contains(body, "You were signed out") {
		t.Error("a new visitor sees the signed-out notice")
	}
	fetch(signIn(browser, srv.URL, "alice", "password"))
	if _, body := fetch(browser.PostForm(srv.URL+"/signout", nil)); strings.Contains(body, "You were signed out") {
		t.Error("signing out on this device shows the signed-out-elsewhere notice")
	}
}

func TestDevicesPageShowsTimeZone(t *testing.T) {
	srv, _ := startTestApp(t)
	c, fetch := newClient(t), fetcher(t)
	fetch(signIn(c, srv.URL, "alice", "password"))
	_, body := fetch(c.Get(srv.URL + "/devices"))
	zone, _ := time.Now().Zone()
	stamp := regexp.MustCompile(`\d{1,2} \w{3} \d{4} \d{2}:\d{2} ` + regexp.QuoteMeta(zone))
	if !stamp.MatchString(body) {
		t.Fatalf("no time with the zone %s on the devices page:\n%s", zone, body)
	}
}

func TestVisitCounterSurvivesRestartWithoutSessionKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.db")
	c, fetch := newClient(t), fetcher(t)

	first, _ := startTestAppOn(t, path, nil)
	fetch(c.Get(first.URL + "/visits"))
	if _, body := fetch(c.Get(first.URL + "/visits")); !strings.Contains(body, `id="count">2<`) {
		t.Fatalf("second visit:\n%s", body)
	}
	first.Close()

	// A new process on the same database, still without SESSION_KEY: the
	// key made on the first run is read back, so the cookie still decodes.
	// (Cookies do not depend on the port: the jar sends the cookie to the
	// new server on 127.0.0.1.)
	second, _ := startTestAppOn(t, path, nil)
	if _, body := fetch(c.Get(second.URL + "/visits")); !strings.Contains(body, `id="count">3<`) {
		t.Fatalf("after a restart without SESSION_KEY the counter started over:\n%s", body)
	}
}
