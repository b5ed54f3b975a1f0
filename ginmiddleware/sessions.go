package ginmiddleware

import (
	"fmt"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/sessions"
)

// DefaultKey is the gin context key under which Sessions and SessionsMany
// store the request's sessions, as in gin-contrib/sessions.
const DefaultKey = "github.com/gormsession/gormsession/ginmiddleware"

// flashesKey is gorilla's default flash key.
const flashesKey = "_flash"

// Session is a gorilla session as gin handlers use it. It has the methods
// of gin-contrib/sessions' Session, with the same meaning, so that moving
// from gin-contrib/sessions is an import change.
//
// A Session is loaded from the store the first time it is used in a
// request, and written only by Save.
type Session interface {
	// ID returns the session's ID in the store ("" for stores, such as
	// gorilla's CookieStore, that keep no server-side record).
	ID() string
	// Get returns the value stored under key, or nil.
	Get(key any) any
	// Set stores val under key.
	Set(key, val any)
	// Delete removes the value stored under key.
	Delete(key any)
	// Clear removes every value, flashes included; it marks the session
	// for saving when there was a value to remove.
	Clear()
	// AddFlash adds a flash message. The optional argument is the flash
	// key; the default is "_flash".
	AddFlash(value any, vars ...string)
	// Flashes returns the flash messages and removes them from the session,
	// so they are read once (once Save is called). It marks the session for
	// saving, flashes or not. The optional argument is the flash key; the
	// default is "_flash".
	Flashes(vars ...string) []any
	// Options replaces the cookie attributes of this session wholesale
	// with options. MaxAge < 0 deletes the session and its cookie on Save.
	Options(options Options)
	// Save writes the session to the store and sets its cookie, if it has
	// changed in this request. Call it before writing the response body.
	Save() error
}

// Sessions returns middleware that makes the session called name, kept in
// store, available to handlers through Default. store is any gorilla
// sessions.Store: gorillastore's Store, or gorilla's own.
func Sessions(name string, store sessions.Store) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Set(DefaultKey, &session{name: name, store: store, c: c})
	}
}

// SessionsMany returns middleware that makes several sessions, one per
// name, all kept in store, available to handlers through DefaultMany.
func SessionsMany(names []string, store sessions.Store) gin.HandlerFunc {
	names = append([]string(nil), names...)
	return func(c *gin.Context) {
		m := make(map[string]Session, len(names))
		for _, name := range names {
			m[name] = &session{name: name, store: store, c: c}
		}
		c.Set(DefaultKey, m)
	}
}

// Default returns the session of the Sessions middleware. It panics when
// the route has no Sessions middleware: that is a programming error.
func Default(c *gin.Context) Session {
	v, _ := c.Get(DefaultKey)
	s, ok := v.(Session)
	if !ok {
		panic("ginmiddleware: Default: no Sessions middleware on this route")
	}
	return s
}

// DefaultMany returns the session called name of the SessionsMany
// middleware. It panics when the route has no SessionsMany middleware or
// it has no session of that name: those are programming errors.
func DefaultMany(c *gin.Context, name string) Session {
	v, _ := c.Get(DefaultKey)
	m, ok := v.(map[string]Session)
	if !ok {
		panic("ginmiddleware: DefaultMany: no SessionsMany middleware on this route")
	}
	s, ok := m[name]
	if !ok {
		panic(fmt.Sprintf("ginmiddleware: DefaultMany: no session named %q", name))
	}
	return s
}

// session implements Session on a gorilla session, loaded lazily.
type session struct {
	name    string
	store   sessions.Store
	c       *gin.Context
	s       *sessions.Session
	written bool
}

// get loads the gorilla session on first use. A cookie the store cannot
// decode (tampered, expired, signed with a retired key) yields a new empty
// session, as gorilla stores do; the error is recorded with c.Error for
// the application's logging, never turned into a failed request.
func (s *session) get() *sessions.Session {
	if s.s != nil {
		return s.s
	}
	gs, err := s.store.Get(s.c.Request, s.name)
	if err != nil {
		_ = s.c.Error(fmt.Errorf("ginmiddleware: session %q: %w", s.name, err)).SetType(gin.ErrorTypePrivate)
	}
	if gs == nil {
		gs = sessions.NewSession(s.store, s.name)
		gs.IsNew = true
	}
	if gs.Values == nil {
		gs.Values = make(map[any]any)
	}
	s.s = gs
	return gs
}

func (s *session) ID() string { return s.get().ID }

func (s *session) Get(key any) any { return s.get().Values[key] }

func (s *session) Set(key, val any) {
	s.get().Values[key] = val
	s.written = true
}

func (s *session) Delete(key any) {
	delete(s.get().Values, key)
	s.written = true
}

// Clear marks the session for saving only when it held values, as
// gin-contrib/sessions does (it deletes them one by one).
func (s *session) Clear() {
	v := s.get().Values
	if len(v) > 0 {
		clear(v)
		s.written = true
	}
}

func (s *session) AddFlash(value any, vars ...string) {
	key := flashKey(vars)
	v := s.get().Values
	flashes, _ := v[key].([]any)
	v[key] = append(flashes, value)
	s.written = true
}

// Flashes marks the session for saving even when it held no flashes, as
// gin-contrib/sessions does: a page that reads flashes and saves slides the
// session's expiry.
func (s *session) Flashes(vars ...string) []any {
	s.written = true
	key := flashKey(vars)
	v := s.get().Values
	old, ok := v[key]
	if !ok {
		return nil
	}
	delete(v, key)
	flashes, ok := old.([]any)
	if !ok {
		// A single value stored under the flash key by Set.
		return []any{old}
	}
	return flashes
}

func flashKey(vars []string) string {
	if len(vars) > 0 {
		return vars[0]
	}
	return flashesKey
}

func (s *session) Options(options Options) {
	s.get().Options = options.gorilla()
	s.written = true
}

func (s *session) Save() error {
	if !s.written {
		return nil
	}
	if err := s.get().Save(s.c.Request, s.c.Writer); err != nil {
		return fmt.Errorf("ginmiddleware: save session %q: %w", s.name, err)
	}
	s.written = false
	return nil
}
