package main

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"sort"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/crypto/bcrypt"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/ginmiddleware"
	"github.com/gormsession/gormsession/gorillastore"
)

// app holds what the handlers share.
type app struct {
	m       *gormsession.Manager
	users   *users
	visits  *gorillastore.Store       // the gorilla-style sessions of the visits page
	cookies ginmiddleware.AuthOptions // the sign-in cookie
	metrics http.Handler              // Prometheus metrics of the sessions and the process
}

// routes returns the app's handler.
func (a *app) routes() http.Handler {
	r := gin.New()
	r.Use(logRequests, gin.Recovery(), limitBody)
	r.GET("/healthz", func(c *gin.Context) { c.String(http.StatusOK, "ok\n") })
	r.GET("/metrics", gin.WrapH(a.metrics))

	// Every route below knows who is signed in, from the session cookie or
	// an "Authorization: Bearer" header, without a database query.
	r.Use(ginmiddleware.Authenticate(a.m, a.cookies))
	r.GET("/signin", a.signInPage)
	r.POST("/signin", a.signIn)
	r.POST("/signout", a.signOut)

	pages := r.Group("/", requireSignIn)
	pages.GET("/", a.home)
	pages.GET("/devices", a.devices)
	pages.POST("/devices/revoke", a.revokeDevice)
	pages.POST("/devices/revoke-others", a.revokeOthers)

	// The gorilla half of the library, through the gin-contrib-shaped API.
	visits := r.Group("/visits", ginmiddleware.Sessions("visits", a.visits))
	visits.GET("", a.visitsPage)
	visits.POST("/flash", a.addFlash)

	api := r.Group("/api")
	api.POST("/login", a.apiLogin)
	api.Use(ginmiddleware.RequireSession())
	api.GET("/me", a.apiMe)
	api.POST("/logout", a.apiLogout)
	api.GET("/sessions", a.apiSessions)
	api.DELETE("/sessions/:id", a.apiRevokeSession)

	r.NoRoute(func(c *gin.Context) {
		render(c, http.StatusNotFound, "notfound.html", gin.H{"Title": "Not found"})
	})
	return r
}

// logRequests logs one line per request, with the errors handlers
// recorded (such as a cookie that could not be decoded).
func logRequests(c *gin.Context) {
	start := time.Now()
	c.Next()
	attrs := []any{"method", c.Request.Method, "path", c.Request.URL.Path,
		"status", c.Writer.Status(), "duration", time.Since(start).Round(time.Microsecond)}
	if len(c.Errors) > 0 {
		attrs = append(attrs, "errors", c.Errors.String())
	}
	slog.Info("request", attrs...)
}

// maxBody is the largest request body the app reads: its forms and JSON
// bodies are a few hundred bytes.
const maxBody = 64 << 10

// tooLarge answers 413 Request Entity Too Large.
func tooLarge(c *gin.Context) {
	c.AbortWithStatusJSON(http.StatusRequestEntityTooLarge,
		gin.H{"error": fmt.Sprintf("request body over %d bytes", maxBody)})
}

// limitBody answers 413 to a request that declares a body over maxBody,
// before reading any of it: a client that sent "Expect: 100-continue"
// then never sends the body, and the connection is closed after the
// answer rather than drained. A body of unknown length (chunked) is read
// through http.MaxBytesReader: reading past maxBody fails with
// *http.MaxBytesError, which the handlers answer with 413 too.
func limitBody(c *gin.Context) {
	if c.Request.ContentLength > maxBody {
		c.Header("Connection", "close")
		tooLarge(c)
		return
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxBody)
}

// formTooLarge parses the request's form and answers 413, reporting true,
// when its body is over maxBody (gin's PostForm would hide the error).
func formTooLarge(c *gin.Context) bool {
	if _, over := errors.AsType[*http.MaxBytesError](c.Request.ParseForm()); over {
		tooLarge(c)
		return true
	}
	return false
}

// requireSignIn sends anonymous visitors to the sign-in page.
func requireSignIn(c *gin.Context) {
	if _, ok := ginmiddleware.Current(c); !ok {
		c.Redirect(http.StatusSeeOther, "/signin")
		c.Abort()
	}
}

// signedOutNotice is shown on the sign-in page to a browser whose session
// cookie no longer resolves.
const signedOutNotice = "You were signed out: this device's session was ended from another device, or it expired. Sign in again to continue."

func (a *app) signInPage(c *gin.Context) {
	if _, ok := ginmiddleware.Current(c); ok {
		c.Redirect(http.StatusSeeOther, "/")
		return
	}
	data := gin.H{"Title": "Sign in", "Demo": a.users.names()}
	if cookie, err := c.Cookie(a.cookieName()); err == nil && cookie != "" {
		// The browser still holds a token that no longer resolves: say
		// why it is here, and delete the dead cookie so the notice is
		// shown once.
		data["Notice"] = signedOutNotice
		if err := ginmiddleware.Logout(c, a.m); err != nil {
			slog.Warn("delete a dead session cookie", "err", err)
		}
	}
	render(c, http.StatusOK, "signin.html", data)
}

// cookieName is the name of the sign-in cookie.
func (a *app) cookieName() string {
	if a.cookies.CookieName != "" {
		return a.cookies.CookieName
	}
	return gormsession.DefaultCookieName
}

func (a *app) signIn(c *gin.Context) {
	if formTooLarge(c) {
		return
	}
	name := c.PostForm("username")
	if !a.users.check(name, c.PostForm("password")) {
		render(c, http.StatusUnauthorized, "signin.html", gin.H{
			"Title": "Sign in", "Demo": a.users.names(), "Username": name,
			"Error": "Wrong username or password.",
		})
		return
	}
	// Login writes the session to the database, then sets its cookie.
	if _, err := ginmiddleware.Login(c, a.m, gormsession.Attributes{UserID: name}); err != nil {
		unavailable(c, err)
		return
	}
	slog.Info("signed in", "user", name)
	c.Redirect(http.StatusSeeOther, "/")
}

func (a *app) signOut(c *gin.Context) {
	if err := ginmiddleware.Logout(c, a.m); err != nil {
		// The session is already dead in memory; the database delete is
		// retried in the background.
		slog.Warn("sign out", "err", err)
	}
	c.Redirect(http.StatusSeeOther, "/signin")
}

func (a *app) home(c *gin.Context) {
	s, _ := ginmiddleware.Current(c)
	render(c, http.StatusOK, "home.html", gin.H{
		"Title": "Home", "Devices": len(a.m.ListUser(s.UserID)),
	})
}

// device is one row of the devices page.
type device struct {
	ID, Label, Created, Expires string
	Current                     bool
}

func (a *app) devices(c *gin.Context) {
	s, _ := ginmiddleware.Current(c)
	var rows []device
	for _, d := range ginmiddleware.ListUser(c, a.m) {
		rows = append(rows, device{
			ID:      d.ID,
			Label:   d.Device,
			Created: formatTime(d.CreatedAt),
			Expires: formatTime(d.ExpiresAt),
			Current: d.ID == s.ID,
		})
	}
	render(c, http.StatusOK, "devices.html", gin.H{"Title": "Your devices", "Devices": rows})
}

// formatTime shows t in the server's time zone, naming the zone.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Local().Format("2 Jan 2006 15:04 MST")
}

// revokeDevice signs out one of the user's devices, this one included.
func (a *app) revokeDevice(c *gin.Context) {
	s, _ := ginmiddleware.Current(c)
	if formTooLarge(c) {
		return
	}
	id := c.PostForm("id")
	if id == s.ID {
		a.signOut(c)
		return
	}
	if other, ok := a.m.Get(id); ok && other.UserID == s.UserID {
		if err := a.m.Revoke(c.Request.Context(), id); err != nil {
			slog.Warn("sign out device", "err", err)
		}
	}
	c.Redirect(http.StatusSeeOther, "/devices")
}

func (a *app) revokeOthers(c *gin.Context) {
	n, err := ginmiddleware.RevokeOthers(c, a.m)
	if err != nil {
		slog.Warn("sign out everywhere else", "err", err)
	}
	s, _ := ginmiddleware.Current(c)
	slog.Info("signed out other devices", "user", s.UserID, "count", n)
	c.Redirect(http.StatusSeeOther, "/devices")
}

// visitsPage counts visits in a gorilla-style session, which needs no
// sign-in, and shows the flash messages it holds.
func (a *app) visitsPage(c *gin.Context) {
	session := ginmiddleware.Default(c)
	count, _ := session.Get("count").(int)
	count++
	session.Set("count", count)
	var flashes []string
	for _, f := range session.Flashes() {
		flashes = append(flashes, fmt.Sprint(f))
	}
	if err := session.Save(); err != nil {
		unavailable(c, err)
		return
	}
	render(c, http.StatusOK, "visits.html", gin.H{"Title": "Visits", "Count": count, "Flashes": flashes})
}

func (a *app) addFlash(c *gin.Context) {
	session := ginmiddleware.Default(c)
	session.AddFlash("This message was stored at " + time.Now().Format("15:04:05 MST") + " and is shown once.")
	if err := session.Save(); err != nil {
		unavailable(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/visits")
}

// unavailable answers 503 when the sessions could not be written, which
// happens while the database is unreachable.
func unavailable(c *gin.Context, err error) {
	slog.Error("session write failed", "path", c.Request.URL.Path, "err", err)
	c.Header("Retry-After", "5")
	render(c, http.StatusServiceUnavailable, "unavailable.html", gin.H{"Title": "Try again shortly"})
}

// credentials is the body of POST /api/login.
type credentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// apiLogin returns a bearer token for API clients; it sets no cookie.
func (a *app) apiLogin(c *gin.Context) {
	var cred credentials
	if err := c.ShouldBindJSON(&cred); err != nil {
		if _, over := errors.AsType[*http.MaxBytesError](err); over {
			tooLarge(c)
			return
		}
		c.JSON(http.StatusBadRequest, gin.H{"error": "expected JSON {\"username\": ..., \"password\": ...}"})
		return
	}
	if !a.users.check(cred.Username, cred.Password) {
		c.JSON(http.StatusUnauthorized, gin.H{"error": "wrong username or password"})
		return
	}
	s, err := a.m.Create(c.Request.Context(), gormsession.Attributes{
		UserID: cred.Username,
		Device: gormsession.DeviceLabel(c.GetHeader("User-Agent")),
	})
	if err != nil {
		slog.Error("api login", "err", err)
		c.Header("Retry-After", "5")
		c.JSON(http.StatusServiceUnavailable, gin.H{"error": "sessions are unavailable, try again shortly"})
		return
	}
	c.JSON(http.StatusOK, gin.H{"token": s.Token, "expires_at": s.ExpiresAt})
}

func (a *app) apiMe(c *gin.Context) {
	s, _ := ginmiddleware.Current(c)
	c.JSON(http.StatusOK, gin.H{"user": s.UserID, "session": s.ID, "device": s.Device, "expires_at": s.ExpiresAt})
}

func (a *app) apiLogout(c *gin.Context) {
	if err := ginmiddleware.Logout(c, a.m); err != nil {
		slog.Warn("api logout", "err", err)
	}
	c.Status(http.StatusNoContent)
}

// apiSession is one element of GET /api/sessions.
type apiSession struct {
	ID        string    `json:"id"`
	Device    string    `json:"device"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	Current   bool      `json:"current"`
}

func (a *app) apiSessions(c *gin.Context) {
	cur, _ := ginmiddleware.Current(c)
	list := []apiSession{}
	for _, s := range ginmiddleware.ListUser(c, a.m) {
		list = append(list, apiSession{
			ID: s.ID, Device: s.Device, CreatedAt: s.CreatedAt, ExpiresAt: s.ExpiresAt, Current: s.ID == cur.ID,
		})
	}
	c.JSON(http.StatusOK, gin.H{"sessions": list})
}

// apiRevokeSession signs out one of the user's sessions, by the ID that
// GET /api/sessions lists: 204 when it is signed out, 404 when the user
// has no such session.
func (a *app) apiRevokeSession(c *gin.Context) {
	cur, _ := ginmiddleware.Current(c)
	id := c.Param("id")
	if !gormsession.ValidID(id) {
		c.JSON(http.StatusNotFound, gin.H{"error": "no such session"})
		return
	}
	if other, ok := a.m.Get(id); !ok || other.UserID != cur.UserID {
		c.JSON(http.StatusNotFound, gin.H{"error": "no such session"})
		return
	}
	if err := a.m.Revoke(c.Request.Context(), id); err != nil {
		// Dead in memory already; the database write is retried.
		slog.Warn("api sign out device", "err", err)
	}
	c.Status(http.StatusNoContent)
}

// users are the demo accounts, with bcrypt password hashes.
type users struct {
	hashes map[string][]byte
	dummy  []byte // compared against for unknown names, to take as long
}

// bcryptCost is the cost of the password hashes.
var bcryptCost = bcrypt.DefaultCost

// newUsers hashes the passwords of the demo accounts.
func newUsers(passwords map[string]string) (*users, error) {
	u := &users{hashes: make(map[string][]byte)}
	for name, pw := range passwords {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcryptCost)
		if err != nil {
			return nil, fmt.Errorf("hash password of %s: %w", name, err)
		}
		u.hashes[name] = h
		u.dummy = h
	}
	return u, nil
}

// check reports whether password is the password of the user called name.
func (u *users) check(name, password string) bool {
	h, ok := u.hashes[name]
	if !ok {
		h = u.dummy
	}
	return bcrypt.CompareHashAndPassword(h, []byte(password)) == nil && ok
}

// names returns the user names, sorted.
func (u *users) names() []string {
	names := make([]string, 0, len(u.hashes))
	for n := range u.hashes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

//go:embed templates
var templateFS embed.FS

// pageTemplates holds each page, parsed together with the layout.
var pageTemplates = func() map[string]*template.Template {
	pages := map[string]*template.Template{}
	for _, name := range []string{"signin.html", "home.html", "devices.html", "visits.html", "unavailable.html", "notfound.html"} {
		pages[name] = template.Must(template.ParseFS(templateFS, "templates/layout.html", "templates/"+name))
	}
	return pages
}()

// render writes a page. data's "User" is set to the signed-in user.
func render(c *gin.Context, status int, page string, data gin.H) {
	if s, ok := ginmiddleware.Current(c); ok {
		data["User"] = s.UserID
	}
	var buf bytes.Buffer
	if err := pageTemplates[page].ExecuteTemplate(&buf, "layout", data); err != nil {
		slog.Error("render", "page", page, "err", err)
		c.String(http.StatusInternalServerError, "internal error\n")
		return
	}
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
}
