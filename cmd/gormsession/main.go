// Command gormsession is the operator's tool for a gormsession sessions
// table: sign a user out everywhere, see who is signed in, count, clean up
// and migrate, from a shell, without writing or deploying code. It works on
// SQLite, PostgreSQL and MySQL/MariaDB through the library's own Store, so
// its writes are the ones the Manager makes, and a revocation reaches every
// running instance through the change feed.
//
// Until the first version is tagged, install it from a clone of the
// repository, in its root directory:
//
//	go install ./cmd/gormsession
//
// Once versions are tagged, without a clone:
//
//	go install github.com/gormsession/gormsession/cmd/gormsession@latest
//
// Its SQLite driver needs cgo. Built with CGO_ENABLED=0, the command works
// on PostgreSQL and MySQL/MariaDB, prints SQLite's DDL with migrate
// --print (which opens no database), and says on any other command on a
// SQLite file that the driver is missing.
//
// # Commands
//
//	gormsession revoke --user ID [--except SESSION]   sign a user out everywhere (but SESSION)
//	gormsession revoke --session SESSION              sign one session out
//	gormsession sessions --user ID                    a user's live sessions, newest first
//	gormsession stats [--by-tenant]                   counts by kind, oldest and newest session
//	gormsession cleanup [--tombstone-ttl 24h]         delete expired rows and old tombstones
//	gormsession migrate [--print]                     create or complete the table, or print its DDL
//
// Every command takes --dsn (default $DATABASE_URL), --table (default
// $SESSION_TABLE, else gormsession_sessions), --json for scripts,
// --timeout, and -h for its help. A DSN is a postgres:// URL, a
// mysql://user:password@tcp(host:3306)/db URL (the MySQL driver's DSN after
// the scheme; parseTime is added), or a SQLite file (a path, file:path or
// sqlite://path). SESSION is a session's ID, the hex SHA-256 of its token,
// as "sessions --json" and the library show it.
//
// The exit status is 0 when the command did its work, 1 when it failed
// (the database, the table), and 2 for a usage error, as Go's own tools
// do. A command that fails changes nothing, and no command but migrate
// creates or alters the table: on a table that lacks something, the others
// say what migrate would add and stop.
//
// # Why the standard flag package
//
// The command has six subcommands of one to three flags each, and runs at
// 3 a.m. from a shell on a server. The flag package, with one FlagSet per
// subcommand, gives each its -h, the exit status 2 for bad usage that Go
// tools use, and both -flag and --flag, in about forty lines, and adds no
// module to the library's go.mod. What cobra would add (generated shell
// completion, nested command trees, a help renderer) does not pay for a
// dependency that every user of the library would find in its module graph.
//
// # Why in the library's module
//
// The command is part of the root module, so that one version tag installs
// it: a nested module would need a replace directive to build against the
// library in this repository, and go install pkg@version refuses a module
// whose go.mod has one. Its drivers (SQLite, PostgreSQL, MySQL) are thus
// requirements of the root module, as the SQLite and PostgreSQL drivers
// already were for its tests; no library package imports any of them, so
// an application builds only the driver it chose (a test checks the
// library's import graph with go list -deps).
package main

import (
	"context"
	"os"
	"os/signal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
