package gorillastore_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gormsession/gormsession/gorillastore"
)

// report is what the test app answers: the session as Get returned it,
// before the request's changes.
type report struct {
	IsNew   bool              `json:"isNew"`
	ID      string            `json:"id"`
	Values  map[string]string `json:"values"`
	Flashes []string          `json:"flashes"`
	GetErr  string            `json:"getErr"`
	SaveErr string            `json:"saveErr"`
	// Rejected is the reason the Store gave CookieRejected for the
	// request's cookie, if it was not used.
	Rejected string `json:"rejected"`
}

// app is a test application over a Store. Each request gets the session
// called by the query parameter "name" (default "s"), reports it, and then
// applies the query:
//
//	set=k=v     Values[k] = v (repeatable)
//	flash=x     AddFlash(x)
//	flashes=1   read (and so consume) the flashes
//	maxage=n    session.Options.MaxAge = n
//	nosave=1    do not Save
//
// The errors of Get and Save, and the reason a cookie was rejected, are
// kept for errors.Is checks.
type app struct {
	store *gorillastore.Store

	mu       sync.Mutex
	getErr   error
	saveErr  error
	rejected error
}

// newTestApp returns an app on st, recording the reasons st gives
// CookieRejected.
func newTestApp(st *gorillastore.Store) *app {
	a := &app{store: st}
	st.CookieRejected = func(r *http.Request, reason error) {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.rejected = reason
	}
	return a
}

func (a *app) errs() (getErr, saveErr error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.getErr, a.saveErr
}

// reason returns the reason the last request's cookie was rejected, or nil.
func (a *app) reason() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.rejected
}

func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	name := q.Get("name")
	if name == "" {
		name = "s"
	}
	a.mu.Lock()
	a.rejected = nil
	a.mu.Unlock()
	session, getErr := a.store.Get(r, name)
	rep := report{IsNew: session.IsNew, ID: session.ID, Values: map[string]string{}}
	if reason := a.reason(); reason != nil {
		rep.Rejected = reason.Error()
	}
	for k, v := range session.Values {
		if k == "_flash" {
			continue
		}
		rep.Values[fmt.Sprint(k)] = fmt.Sprint(v)
	}
	if q.Get("flashes") == "1" {
		for _, f := range session.Flashes() {
			rep.Flashes = append(rep.Flashes, fmt.Sprint(f))
		}
	}
	for _, kv := range q["set"] {
		k, v, _ := strings.Cut(kv, "=")
		session.Values[k] = v
	}
	if f := q.Get("flash"); f != "" {
		session.AddFlash(f)
	}
	if ma := q.Get("maxage"); ma != "" {
		n, _ := strconv.Atoi(ma)
		session.Options.MaxAge = n
	}
	var saveErr error
	if q.Get("nosave") != "1" {
		saveErr = session.Save(r, w)
	}
	a.mu.Lock()
	a.getErr, a.saveErr = getErr, saveErr
	a.mu.Unlock()
	if getErr != nil {
		rep.GetErr = getErr.Error()
	}
	if saveErr != nil {
		rep.SaveErr = saveErr.Error()
	}
	if err := json.NewEncoder(w).Encode(rep); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

// serve starts an httptest server for h, closed when the test ends.
func serve(t testing.TB, h http.Handler) *httptest.Server {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// browser is an HTTP client with a cookie jar, as a browser would have.
type browser struct {
	t      testing.TB
	srv    *httptest.Server
	client *http.Client
}

func newBrowser(t testing.TB, srv *httptest.Server) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := *srv.Client() // shares the server's transport, closed with it
	c.Jar = jar
	return &browser{t: t, srv: srv, client: &c}
}

// get requests path and returns the response (body already read) and the
// app's report.
func (b *browser) get(path string) (*http.Response, report) {
	b.t.Helper()
	return do(b.t, b.client, b.srv.URL+path, nil)
}

// cookies returns the browser's cookies for the server.
func (b *browser) cookies() []*http.Cookie {
	u, _ := url.Parse(b.srv.URL)
	return b.client.Jar.Cookies(u)
}

func (b *browser) cookie(name string) *http.Cookie {
	for _, c := range b.cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// do requests u with the given Cookie header (when not nil) and decodes the
// app's report. It fails the test on a non-200 answer.
func do(t testing.TB, client *http.Client, u string, cookie *string) (*http.Response, report) {
	t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cookie != nil {
		req.Header.Set("Cookie", *cookie)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("GET %s: read body: %v", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", u, resp.Status, body)
	}
	var rep report
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatalf("GET %s: bad report %q: %v", u, body, err)
	}
	return resp, rep
}

// setCookie returns the single Set-Cookie header of resp for name.
func setCookie(t testing.TB, resp *http.Response, name string) string {
	t.Helper()
	var found []string
	for _, h := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(h, name+"=") {
			found = append(found, h)
		}
	}
	if len(found) != 1 {
		t.Fatalf("Set-Cookie for %q: %q, want exactly one", name, found)
	}
	return found[0]
}

// attrs returns the attributes of a Set-Cookie header other than its value,
// sorted, with Expires reduced to its name (its value is the clock's).
func attrs(header string) []string {
	parts := strings.Split(header, "; ")[1:]
	for i, p := range parts {
		if strings.HasPrefix(p, "Expires=") {
			parts[i] = "Expires"
		}
	}
	sort.Strings(parts)
	return parts
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
