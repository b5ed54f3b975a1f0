package gorillastore

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gorilla/sessions"
)

// TestSetCookieWritesWhatNetHTTPWrites compares Store.setCookie with
// http.SetCookie(w, sessions.NewCookie(...)), which it stands for, over
// options, names and values, the same options many times in a row and
// changing ones.
func TestSetCookieWritesWhatNetHTTPWrites(t *testing.T) {
	options := []sessions.Options{
		{Path: "/", MaxAge: 86400 * 30, HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode},
		{},
		{MaxAge: 60},
		{Path: "/app", Domain: ".example.com", MaxAge: 1, SameSite: http.SameSiteStrictMode, Partitioned: true},
		{Path: "/a;b", Domain: "bad domain", MaxAge: 3600, SameSite: http.SameSiteNoneMode, Secure: true},
		{Domain: "example.com", SameSite: http.SameSiteDefaultMode, HttpOnly: true},
		{MaxAge: 1 << 40},
		{MaxAge: -1},
	}
	names := []string{"s", "session_id", "bad name", ""}
	values := []string{"MTc5NTg2NDcwOXxPbFhz-_=", "", "a b", "a,b", `a"b`, "a;b", "é", "x\\y"}
	st := &Store{}
	for range 2 {
		for _, o := range options {
			for _, name := range names {
				for _, value := range values {
					for attempt := 0; ; attempt++ {
						want, got := httptest.NewRecorder(), httptest.NewRecorder()
						http.SetCookie(want, sessions.NewCookie(name, value, &o))
						st.setCookie(got, name, value, &o)
						w, g := want.Header()["Set-Cookie"], got.Header()["Set-Cookie"]
						if len(w) == len(g) && (len(w) == 0 || w[0] == g[0]) {
							break
						}
						if attempt < 3 { // the second may have changed in between
							continue
						}
						t.Fatalf("options %+v, name %q, value %q:\n got %q\nwant %q", o, name, value, g, w)
					}
				}
			}
		}
	}
}
