// Package ginmiddleware connects a [gormsession.Manager] to the Gin web
// framework, in two independent ways.
//
// # Token authentication
//
// [Authenticate] resolves the request's token, from an
// "Authorization: Bearer" header or from the session cookie, against the
// Manager's memory (no database statement per request) and stores the
// session in the Gin context, where [Current] finds it. [RequireSession]
// turns anonymous requests away with 401. [Login] creates a session and
// sets its cookie; [Logout] revokes it and deletes the cookie:
//
//	m, err := gormsession.NewManager(ctx, backend, gormsession.ManagerOptions{})
//	defer m.Close()
//
//	r := gin.New()
//	r.Use(ginmiddleware.Authenticate(m, ginmiddleware.AuthOptions{}))
//	r.POST("/login", func(c *gin.Context) {
//		user, ok := checkPassword(c) // the application's own check
//		if !ok {
//			c.AbortWithStatus(http.StatusUnauthorized)
//			return
//		}
//		s, err := ginmiddleware.Login(c, m, gormsession.Attributes{UserID: user})
//		if err != nil {
//			c.AbortWithStatus(http.StatusInternalServerError)
//			return
//		}
//		c.JSON(http.StatusOK, gin.H{"token": s.Token}) // for API clients
//	})
//	api := r.Group("/api", ginmiddleware.RequireSession())
//	api.GET("/me", func(c *gin.Context) {
//		s, _ := ginmiddleware.Current(c)
//		c.JSON(http.StatusOK, gin.H{"user": s.UserID})
//	})
//
// The cookie is HttpOnly, Secure and SameSite=Lax on path "/" and lives as
// long as the session; [AuthOptions] changes that. Unsafe requests (POST,
// PUT, PATCH, DELETE) that are not authenticated by a bearer token are
// checked by the standard library's [http.CrossOriginProtection] and
// answered 403 when they come from another site, which defeats forged
// cross-site forms; requests with a bearer token are not, since browsers
// never attach one by themselves. [Login] and [Logout] check the origin
// too, on routes without Authenticate. Only signed-in sessions
// authenticate: the token of an anonymous session (a gorillastore
// visitor's) leaves the request anonymous.
//
// [Rotate] gives the session a new token when privileges change,
// [RevokeOthers] ends the user's other sessions and [ListUser] lists them.
//
// # gin-contrib/sessions-shaped sessions
//
// [Sessions], [SessionsMany], [Default], [DefaultMany] and [Session] have the
// names, signatures and behaviour of gin-contrib/sessions, over any gorilla
// sessions.Store; with gorillastore's Store the sessions are kept by the
// Manager. Moving from gin-contrib/sessions is an import change:
//
//	import sessions "github.com/gormsession/gormsession/ginmiddleware"
//
//	store := gorillastore.New(m, hashKey)
//	r.Use(sessions.Sessions("mysession", store))
//	r.GET("/incr", func(c *gin.Context) {
//		session := sessions.Default(c)
//		count, _ := session.Get("count").(int)
//		session.Set("count", count+1)
//		if err := session.Save(); err != nil {
//			c.AbortWithStatus(http.StatusInternalServerError)
//			return
//		}
//		c.JSON(http.StatusOK, gin.H{"count": count + 1})
//	})
//
// Session marks itself for saving exactly when gin-contrib/sessions v1.0.4
// does: Set, Delete, AddFlash, Options and Flashes (flashes or not) always,
// Clear when there was a value to remove; Save writes only a session so
// marked. gin-contrib's own store tests (its tester package) pass on
// gorillastore, and the repository's benchmarks module runs one
// application on both and compares every answer. The differences, all
// deliberate:
//
//   - A store's Get error is added to the request's errors with c.Error
//     (private) instead of being logged with slog. gorillastore gives none
//     for a cookie that names no usable session; its Store.CookieRejected
//     tells why.
//   - Sessions and SessionsMany take any gorilla sessions.Store;
//     gin-contrib's take its own Store interface, a gorilla store with an
//     Options method. A store's options are set on the store itself
//     (gorillastore's Options field).
//   - Default panics with a message naming the missing middleware, and
//     DefaultMany panics for a name it was not given, where gin-contrib
//     returns a nil Session that panics on first use.
//   - A value of another type than []any stored under a flash key (by Set)
//     is returned by Flashes as a one-element slice, and replaced by
//     AddFlash; gorilla's Session, which gin-contrib calls, panics.
//   - Options has gorilla's Partitioned attribute too.
//   - Save's error is wrapped with the session's name ("ginmiddleware: save
//     session ..."); errors.Is finds the store's.
package ginmiddleware
