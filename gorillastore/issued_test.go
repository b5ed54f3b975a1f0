package gorillastore_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/gorillastore"
)

// countingCodec is a securecookie codec that counts its decodes.
type countingCodec struct {
	securecookie.Codec
	decodes atomic.Int64
}

func (c *countingCodec) Decode(name, value string, dst any) error {
	c.decodes.Add(1)
	return c.Codec.Decode(name, value, dst)
}

// countingCodecs returns the codecs of keyPairs, as New makes them, each
// counting its decodes.
func countingCodecs(m *gormsession.Manager, keyPairs ...[]byte) []*countingCodec {
	st := gorillastore.New(m, keyPairs...)
	out := make([]*countingCodec, len(st.Codecs))
	for i, c := range st.Codecs {
		out[i] = &countingCodec{Codec: c}
	}
	return out
}

func useCodecs(st *gorillastore.Store, codecs ...*countingCodec) {
	st.Codecs = nil
	for _, c := range codecs {
		st.Codecs = append(st.Codecs, c)
	}
}

// get gets the session called name for a request carrying the cookie
// name=value. The error is New's, or else the reason the cookie was
// rejected. (It sets st.CookieRejected: call it from one goroutine.)
func get(st *gorillastore.Store, name, value string) (*sessions.Session, error) {
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(&http.Cookie{Name: name, Value: value})
	var reason error
	st.CookieRejected = func(_ *http.Request, err error) { reason = err }
	s, err := st.New(r, name)
	if err == nil {
		err = reason
	}
	return s, err
}

// TestGetDecodesEveryCookie: every Get decodes the request's cookie with
// the Store's codecs, exactly once, also when the cookie is the value the
// Store itself issued for the session a moment before (and Save sends
// again): no Get accepts a cookie for what it looks like. A value of the
// same token encoded elsewhere is decoded the same way.
func TestGetDecodesEveryCookie(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		e := newEnv(t, tdb, gormsession.ManagerOptions{})
		k := [][]byte{key(32), key(32)}
		st := encryptingStore(e, k...)
		codec := countingCodecs(e.m, k...)[0]
		useCodecs(st, codec)

		created, c0, err := exchange(t, st, "sid", "", setValue("user", "alice"))
		if err != nil || c0 == "" {
			t.Fatalf("create: %v", err)
		}
		if n := codec.decodes.Load(); n != 0 {
			t.Fatalf("creating the session decoded %d cookies, want 0", n)
		}
		want := int64(0)
		for _, after := range []time.Duration{0, time.Second, 58 * time.Second} {
			e.clock.Add(after)
			s, err := get(st, "sid", c0)
			if err != nil || s.IsNew || s.ID != created.ID || s.Values["user"] != "alice" {
				t.Fatalf("get with the issued cookie: %v, %v", s.Values, err)
			}
			want++
			if n := codec.decodes.Load(); n != want {
				t.Fatalf("%d decodes after %d Gets of the issued cookie, want one each", n, want)
			}
		}

		// A Get and a Save in one request: the Get decodes, the Save sends
		// the issued value again without decoding it a second time.
		if _, c, err := exchange(t, st, "sid", c0, setValue("visits", 1)); err != nil || c != c0 {
			t.Fatalf("get and save: %v; want the issued cookie sent again", err)
		}
		want++
		if n := codec.decodes.Load(); n != want {
			t.Fatalf("%d decodes after a Get and a Save, want %d", n, want)
		}

		// The same token, encoded again (another instance's cookie).
		other, err := securecookie.EncodeMulti("sid", []byte(tokenOf(t, codec.Codec, c0)), codec.Codec)
		if err != nil || other == c0 {
			t.Fatalf("encode again: %v", err)
		}
		if s, err := get(st, "sid", other); err != nil || s.ID != created.ID {
			t.Fatalf("get with another value: %v", err)
		}
		want++
		if n := codec.decodes.Load(); n != want {
			t.Fatalf("%d decodes, want %d", n, want)
		}
	})
}

// tokenOf decodes the cookie value called "sid" with codec.
func tokenOf(t *testing.T, codec securecookie.Codec, value string) string {
	t.Helper()
	var raw []byte
	if err := codec.Decode("sid", value, &raw); err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// TestIssuedCookieIsRefusedWhereItDoesNotVerify: the value the Store
// issued, and would send again, is refused under another cookie name (the
// name is signed), once the key that signed it is gone, and once its
// session is deleted or revoked. A key rotation that keeps the old key
// still accepts it, through the old key.
func TestIssuedCookieIsRefusedWhereItDoesNotVerify(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		e := newEnv(t, tdb, gormsession.ManagerOptions{})
		old := [][]byte{key(32), key(32)}
		st := encryptingStore(e, old...)

		created, c0, err := exchange(t, st, "sid", "", setValue("user", "alice"))
		if err != nil {
			t.Fatal(err)
		}
		if s, err := get(st, "other", c0); err == nil || !s.IsNew {
			t.Fatalf("the value under another name: %v, new %v; want securecookie's error", err, s.IsNew)
		}

		// Rotation: a new key first, the old one kept.
		rotated := countingCodecs(e.m, append([][]byte{key(32), key(32)}, old...)...)
		saved := st.Codecs
		useCodecs(st, rotated...)
		if s, err := get(st, "sid", c0); err != nil || s.ID != created.ID {
			t.Fatalf("after a rotation that keeps the old key: %v", err)
		}
		if rotated[1].decodes.Load() != 1 {
			t.Fatal("after a rotation, the issued cookie was not decoded by the old key")
		}
		// The old key dropped.
		useCodecs(st, rotated[0])
		if s, err := get(st, "sid", c0); !errors.Is(err, gorillastore.ErrUnverifiedCookie) || !s.IsNew {
			t.Fatalf("after the old key is dropped: %v; want ErrUnverifiedCookie", err)
		}

		st.Codecs = saved
		if s, err := get(st, "sid", c0); err != nil || s.ID != created.ID {
			t.Fatalf("with the old keys back: %v", err)
		}
		if err := e.m.Revoke(t.Context(), created.ID); err != nil {
			t.Fatal(err)
		}
		if s, err := get(st, "sid", c0); !errors.Is(err, gormsession.ErrNotFound) || !s.IsNew {
			t.Fatalf("after Revoke: %v; want ErrNotFound", err)
		}

		// Deleted through the Store: the value is forgotten.
		_, c1, err := exchange(t, st, "sid", "", setValue("user", "bob"))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := exchange(t, st, "sid", c1, func(s *sessions.Session) { s.Options.MaxAge = -1 }); err != nil {
			t.Fatal(err)
		}
		if s, err := get(st, "sid", c1); !errors.Is(err, gormsession.ErrNotFound) || !s.IsNew {
			t.Fatalf("after delete: %v; want ErrNotFound", err)
		}
	})
}

// TestIssuedCookieOfASessionRevokedElsewhere: a session revoked on another
// instance is refused here once the change feed has told this instance,
// though its cookie is the value this Store issued, which verifies; a Save
// then starts a new session with a new cookie.
func TestIssuedCookieOfASessionRevokedElsewhere(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		e := newEnv(t, tdb, gormsession.ManagerOptions{SyncInterval: 10 * time.Millisecond})
		k := [][]byte{key(32), key(32)}
		st := encryptingStore(e, k...)
		codec := countingCodecs(e.m, k...)[0]
		useCodecs(st, codec)
		other := e.newManager(t, gormsession.ManagerOptions{})

		created, c0, err := exchange(t, st, "sid", "", setValue("user", "alice"))
		if err != nil {
			t.Fatal(err)
		}
		if s, err := get(st, "sid", c0); err != nil || s.ID != created.ID {
			t.Fatalf("get before the revocation: %v", err)
		}
		if err := other.Revoke(t.Context(), created.ID); err != nil {
			t.Fatal(err)
		}
		// The change feed runs every 10 ms.
		gets := int64(1)
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			s, err := get(st, "sid", c0)
			gets++
			if errors.Is(err, gormsession.ErrNotFound) && s.IsNew {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("get 5 s after the revocation elsewhere: %v; want ErrNotFound", err)
			}
		}
		if n := codec.decodes.Load(); n != gets {
			t.Fatalf("%d decodes for %d Gets, want one each", n, gets)
		}
		s, c1, err := exchange(t, st, "sid", c0, setValue("user", "mallory"))
		if err != nil || s.ID == created.ID || c1 == "" || c1 == c0 {
			t.Fatalf("save after the revocation: %v (ID %s); want a new session and cookie", err, s.ID)
		}
	})
}
