package e2e

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/gormsession/gormsession"
)

// rawRequest sends request text as it is, without the checks of Go's HTTP
// client, and returns the response status.
func rawRequest(t *testing.T, addr, request string) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(time.Minute)); err != nil { // a hang guard
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatalf("write request: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatalf("read response body: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestBadInputNeverFails5xx sends malformed and hostile credentials to every
// kind of route: each request is answered as an anonymous one (a page, a
// redirect to sign-in, 401) or refused with 4xx, never with 5xx, and the
// server stays up.
func TestBadInputNeverFails5xx(t *testing.T) {
	app := StartApp(t, AppOptions{})

	// A real token, for the lowercase scheme.
	var login struct{ Token string }
	if status := api(t, http.MethodPost, app.BaseURL+"/api/login", "", `{"username":"alice","password":"password"}`, &login); status != http.StatusOK {
		t.Fatalf("API login: %d", status)
	}
	forgedVisits, err := securecookie.New([]byte(rand.Text()+rand.Text()), nil).
		SetSerializer(securecookie.NopEncoder{}).
		Encode("visits", []byte(gormsession.NewToken()))
	if err != nil {
		t.Fatal(err)
	}
	huge := strings.Repeat("A", 64<<10)

	headers := []struct {
		name, header string
		me           int // the status of GET /api/me
	}{
		{"garbage cookie", "Cookie: session=%%%garbage%%%; visits=!!!not-base64!!!", 401},
		{"forged token cookie", "Cookie: session=" + gormsession.NewToken(), 401},
		{"forged gorilla cookie", "Cookie: visits=" + forgedVisits, 401},
		{"64 KB cookie header", "Cookie: session=" + huge + "; visits=" + huge[:1000], 401},
		{"64 KB of cookies", "Cookie: " + strings.Repeat("a=b; ", 64<<10/5), 401},
		{"lowercase bearer scheme", "Authorization: bearer " + login.Token, 200},
		{"lowercase bearer, unknown token", "Authorization: bearer " + gormsession.NewToken(), 401},
		{"bearer without token", "Authorization: Bearer ", 401},
		{"bearer token with NUL", "Authorization: Bearer " + login.Token[:20] + "\x00" + login.Token[20:], 400},
		{"cookie with NUL", "Cookie: session=" + login.Token[:20] + "\x00" + login.Token[20:], 400},
		{"64 KB bearer token", "Authorization: Bearer " + huge, 401},
	}
	routes := []struct{ method, path string }{
		{"GET", "/"},
		{"GET", "/signin"},
		{"GET", "/devices"},
		{"GET", "/visits"},
		{"GET", "/api/me"},
		{"GET", "/api/sessions"},
		{"POST", "/devices/revoke"},
		{"POST", "/visits/flash"},
		{"POST", "/signout"},
		{"POST", "/api/logout"},
	}
	for _, h := range headers {
		t.Run(h.name, func(t *testing.T) {
			for _, r := range routes {
				if h.me == 200 && (r.path == "/api/logout" || r.path == "/signout") {
					continue // keep the real token alive for the other routes
				}
				req := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\n%s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", r.method, r.path, app.Addr, h.header)
				status := rawRequest(t, app.Addr, req)
				if status >= 500 {
					t.Errorf("%s %s: %d", r.method, r.path, status)
				}
				if r.path == "/api/me" && status != h.me {
					t.Errorf("GET /api/me: %d, want %d", status, h.me)
				}
			}
		})
	}

	bodies := []struct{ name, body string }{
		{"not JSON", "username=alice&password=password"},
		{"NUL in the user name", `{"username":"alice\u0000","password":"password"}`},
		{"NUL byte in the body", "{\"username\":\"alice\x00\",\"password\":\"password\"}"},
		{"wrong types", `{"username":42,"password":["password"]}`},
		{"64 KB password", `{"username":"alice","password":"` + huge + `"}`},
	}
	// A body over the app's 64 KiB limit is answered 413.
	for _, b := range bodies {
		status := api(t, http.MethodPost, app.BaseURL+"/api/login", "", b.body, nil)
		if len(b.body) > 64<<10 {
			if status != http.StatusRequestEntityTooLarge {
				t.Errorf("POST /api/login, %s: %d, want 413", b.name, status)
			}
		} else if status != http.StatusBadRequest && status != http.StatusUnauthorized {
			t.Errorf("POST /api/login, %s: %d, want 400 or 401", b.name, status)
		}
	}

	forms := []struct{ name, body string }{
		{"NUL in the user name", "username=alice%00&password=password"},
		{"64 KB password", "username=alice&password=" + huge},
		{"repeated fields", "username=bob&username=alice&password=x&password=password"},
		{"bad escapes", "username=%zz&password=%"},
	}
	for _, f := range forms {
		status := rawRequest(t, app.Addr, fmt.Sprintf("POST /signin HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", app.Addr, len(f.body), f.body))
		if len(f.body) > 64<<10 {
			if status != http.StatusRequestEntityTooLarge {
				t.Errorf("POST /signin, %s: %d, want 413", f.name, status)
			}
		} else if status != http.StatusBadRequest && status != http.StatusUnauthorized {
			t.Errorf("POST /signin, %s: %d, want 400 or 401", f.name, status)
		}
	}

	// Signed in as bob, a request to sign out alice's session by its ID
	// does nothing.
	var aliceMe struct{ Session string }
	api(t, http.MethodGet, app.BaseURL+"/api/me", login.Token, "", &aliceMe)
	bob := newHTTPUser(t)
	if status, path, _ := bob.do(http.MethodPost, app.BaseURL+"/signin", url.Values{"username": {"bob"}, "password": {"password"}}, nil); status != http.StatusOK || path != "/" {
		t.Fatalf("sign in as bob: %d at %s", status, path)
	}
	if status, _, _ := bob.do(http.MethodPost, app.BaseURL+"/devices/revoke", url.Values{"id": {aliceMe.Session}}, nil); status != http.StatusOK {
		t.Fatalf("bob revoking alice's session: %d, want 200 (his devices page)", status)
	}

	if !app.Running() {
		t.Fatal("the app exited")
	}
	if status := api(t, http.MethodGet, app.BaseURL+"/api/me", login.Token, "", nil); status != http.StatusOK {
		t.Fatalf("the real token after the bad input: GET /api/me = %d, want 200", status)
	}
	if log := app.Log(); strings.Contains(log, "panic") || strings.Contains(log, "status=5") {
		t.Fatalf("the log shows a panic or a 5xx:\n%s", log)
	}
}
