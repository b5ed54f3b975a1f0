package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/gormsession/gormsession"
)

// The exit statuses.
const (
	exitOK      = 0
	exitFailed  = 1
	exitUsage   = 2
	commandName = "gormsession"
)

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// usagef returns a usageError.
func usagef(format string, args ...any) error {
	return usageError{fmt.Sprintf(format, args...)}
}

// command is one subcommand.
type command struct {
	name, args, about string
	// flags declares the command's own flags on fs; run does the work.
	flags func(fs *flag.FlagSet) func(ctx context.Context, env *env) error
}

// commands are the subcommands, in the order the usage lists them.
var commands = []command{
	{"revoke", "--user ID [--except SESSION] | --session SESSION", "sign a user out everywhere, or one session out", revokeFlags},
	{"sessions", "--user ID", "list a user's live sessions, newest first", sessionsFlags},
	{"stats", "[--by-tenant]", "count live signed-in and anonymous sessions, expired rows and tombstones", statsFlags},
	{"cleanup", "[--tombstone-ttl DURATION]", "delete expired sessions and old tombstones", cleanupFlags},
	{"migrate", "[--print]", "create the table or add what it lacks; --print writes the DDL instead", migrateFlags},
}

// env is what every command works with: its flags, output and database.
type env struct {
	// out is what the command writes, to stdout once it succeeded.
	out    *bytes.Buffer
	json   bool
	conn   connFlags
	getenv func(string) string
	// tombstoneTTL is the Store's StoreOptions.TombstoneTTL (cleanup).
	tombstoneTTL time.Duration
}

// connFlags are the flags every command has.
type connFlags struct {
	dsn, table string
	timeout    time.Duration
}

// run runs the command line args (without the program name) and returns
// the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		return exitOK
	}
	var cmd *command
	for i := range commands {
		if commands[i].name == args[0] {
			cmd = &commands[i]
		}
	}
	if cmd == nil {
		say(stderr, "%s: unknown command %q\n", commandName, args[0])
		usage(stderr)
		return exitUsage
	}
	e := &env{out: new(bytes.Buffer), getenv: getenv}
	fs := flag.NewFlagSet(commandName+" "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&e.conn.dsn, "dsn", getenv("DATABASE_URL"), "the database: a postgres:// or mysql:// URL, or a SQLite file (env DATABASE_URL)")
	fs.StringVar(&e.conn.table, "table", envOr(getenv, "SESSION_TABLE", gormsession.DefaultTableName), "the sessions table (env SESSION_TABLE)")
	fs.BoolVar(&e.json, "json", false, "write JSON, for scripts")
	fs.DurationVar(&e.conn.timeout, "timeout", 30*time.Second, "give up after this long")
	do := cmd.flags(fs)
	err := fs.Parse(args[1:])
	switch {
	case errors.Is(err, flag.ErrHelp):
		commandUsage(stdout, cmd, fs)
		return exitOK
	case err != nil:
		say(stderr, "%s %s: %v\n", commandName, cmd.name, err)
		commandUsage(stderr, cmd, fs)
		return exitUsage
	case fs.NArg() > 0:
		say(stderr, "%s %s: unexpected argument %q\n", commandName, cmd.name, fs.Arg(0))
		commandUsage(stderr, cmd, fs)
		return exitUsage
	}
	if e.conn.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.conn.timeout)
		defer cancel()
	}
	if err := do(ctx, e); err != nil {
		say(stderr, "%s %s: %v\n", commandName, cmd.name, err)
		if errors.As(err, new(usageError)) {
			return exitUsage
		}
		return exitFailed
	}
	if _, err := stdout.Write(e.out.Bytes()); err != nil {
		say(stderr, "%s %s: write the output: %v\n", commandName, cmd.name, err)
		return exitFailed
	}
	return exitOK
}

// say writes a message for the person at the terminal; a failure to write
// it leaves nothing to do.
func say(w io.Writer, format string, args ...any) {
	_, _ = fmt.Fprintf(w, format, args...)
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

func usage(w io.Writer) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: the operator's tool for a gormsession sessions table\n\nUsage:\n\n", commandName)
	for _, c := range commands {
		fmt.Fprintf(&b, "\t%s %s %s\n\t\t%s\n", commandName, c.name, c.args, c.about)
	}
	fmt.Fprintf(&b, "\nEvery command takes --dsn (or DATABASE_URL), --table, --json and --timeout.\n"+
		"Run '%s COMMAND -h' for a command's flags. Exit status: 0 done, 1 failed, 2 usage.\n", commandName)
	say(w, "%s", b.String())
}

func commandUsage(w io.Writer, c *command, fs *flag.FlagSet) {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: %s %s %s\n\n%s.\n\nFlags:\n", commandName, c.name, c.args, strings.ToUpper(c.about[:1])+c.about[1:])
	fs.SetOutput(&b)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	say(w, "%s", b.String())
}

// sessionIDPattern is what a session ID is: a hex SHA-256, as HashToken
// makes it; shortIDPattern is the start of one, as the sessions table shows it.
var (
	sessionIDPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)
	shortIDPattern   = regexp.MustCompile(`^[0-9a-f]{8,63}$`)
)

// checkSessionID returns a usage error unless id is a session ID.
func checkSessionID(flagName, id string) error {
	switch {
	case sessionIDPattern.MatchString(id):
	case shortIDPattern.MatchString(id):
		return usagef("--%s %q is not a session ID but the start of one: give all 64 hex digits, as 'sessions --user ID --json' shows them", flagName, id)
	default:
		return usagef("--%s %q is not a session ID (64 lowercase hex digits, as 'sessions --user ID --json' shows it)", flagName, id)
	}
	return nil
}

// writeJSON writes v as indented JSON.
func (e *env) writeJSON(v any) error {
	enc := json.NewEncoder(e.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
