// Package benchmarks compares gormsession's gorilla/sessions store with
// peer session stores on the same databases: wader/gormstore,
// gin-contrib/sessions' gorm backend and gorilla's CookieStore. It is a
// module of its own, so that users of gormsession never download the peers.
// Everything is in its tests; see README.md for the command and the results.
package benchmarks
