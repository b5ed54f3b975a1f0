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
// Two differences are deliberate: a cookie the store cannot decode is not
// logged to the standard logger but added to the request's errors with
// c.Error, and Session.Options marks the session for saving, so that the
// logout idiom session.Options(sessions.Options{MaxAge: -1}) followed by
// session.Save() deletes the cookie even when nothing else changed.
package ginmiddleware
