package gorillastore

import (
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/sessions"
)

// cookieFormat is the Set-Cookie line of the cookie called name with the
// options opts, as net/http writes it, cut around the parts that change
// from one save to the next: name=value, then mid (Path, Domain), then the
// Expires of a positive MaxAge, then tail (Max-Age, HttpOnly, Secure,
// SameSite, Partitioned).
type cookieFormat struct {
	name      string
	opts      sessions.Options
	mid, tail string
}

// setCookie sets the cookie called name to value with opts on w:
// http.SetCookie(w, sessions.NewCookie(name, value, opts)), with the
// attributes formatted once for a given name and options rather than on
// every save. A value that net/http would quote or change, and a deletion,
// take http.SetCookie itself.
func (s *Store) setCookie(w http.ResponseWriter, name, value string, opts *sessions.Options) {
	f := s.format.Load()
	if f == nil || f.name != name || f.opts != *opts {
		f = newCookieFormat(name, opts)
		if f != nil {
			s.format.Store(f)
		}
	}
	if f == nil || opts.MaxAge < 0 || !plainCookieValue(value) {
		http.SetCookie(w, sessions.NewCookie(name, value, opts))
		return
	}
	var b strings.Builder
	b.Grow(len(name) + 1 + len(value) + len(f.mid) + len("; Expires=") + len(http.TimeFormat) + len(f.tail))
	b.WriteString(name)
	b.WriteByte('=')
	b.WriteString(value)
	b.WriteString(f.mid)
	if opts.MaxAge > 0 {
		// As sessions.NewCookie and http.Cookie.String.
		expires := time.Now().Add(time.Duration(opts.MaxAge) * time.Second)
		if expires.Year() >= 1601 {
			var buf [len(http.TimeFormat)]byte
			b.WriteString("; Expires=")
			b.Write(expires.UTC().AppendFormat(buf[:0], http.TimeFormat))
		}
	}
	b.WriteString(f.tail)
	h := w.Header()
	h["Set-Cookie"] = append(h["Set-Cookie"], b.String())
}

// newCookieFormat cuts the line net/http writes for the cookie called name
// with opts and an empty value, or returns nil when it writes none (an
// invalid name).
func newCookieFormat(name string, opts *sessions.Options) *cookieFormat {
	c := sessions.NewCookie(name, "", opts)
	c.Expires = time.Time{}
	line := c.String()
	if line == "" || !strings.HasPrefix(line, name+"=") {
		return nil
	}
	f := &cookieFormat{name: name, opts: *opts, mid: line[len(name)+1:]}
	if opts.MaxAge > 0 {
		i := strings.Index(f.mid, "; Max-Age=")
		if i < 0 {
			return nil
		}
		f.mid, f.tail = f.mid[:i], f.mid[i:]
	}
	return f
}

// plainCookieValue reports whether net/http writes v as it is: no byte it
// drops, and none that makes it quote the value.
func plainCookieValue(v string) bool {
	for i := 0; i < len(v); i++ {
		b := v[i]
		if b <= ' ' || b >= 0x7f || b == '"' || b == ';' || b == '\\' || b == ',' {
			return false
		}
	}
	return true
}
