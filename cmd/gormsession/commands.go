package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gormsession/gormsession"
)

// timeLayout is how times are shown to people: UTC, to the second.
const timeLayout = "2006-01-02 15:04:05Z"

// showTime formats t, or "never"/"-" for the zero time.
func showTime(t time.Time, zero string) string {
	if t.IsZero() {
		return zero
	}
	return t.UTC().Format(timeLayout)
}

// nullableTime is a time for JSON: null when zero.
func nullableTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func revokeFlags(fs *flag.FlagSet) func(context.Context, *env) error {
	var user, except, session string
	fs.StringVar(&user, "user", "", "sign out every live session of this user ID")
	fs.StringVar(&except, "except", "", "with --user: keep this session ID")
	fs.StringVar(&session, "session", "", "sign out the session with this ID")
	return func(ctx context.Context, e *env) error {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		switch {
		case set["user"] && set["session"]:
			return usagef("give --user or --session, not both")
		case set["user"]:
			if strings.TrimSpace(user) == "" {
				return usagef("--user is empty: give the ID of the user to sign out (anonymous sessions have none)")
			}
			if set["except"] {
				if err := checkSessionID("except", except); err != nil {
					return err
				}
			}
			return revokeUser(ctx, e, user, except)
		case set["session"]:
			if set["except"] {
				return usagef("--except goes with --user")
			}
			if err := checkSessionID("session", session); err != nil {
				return err
			}
			return revokeSession(ctx, e, session)
		default:
			return usagef("give --user ID or --session SESSION")
		}
	}
}

// revokeResult is what revoke reports.
type revokeResult struct {
	Revoked int      `json:"revoked"`
	IDs     []string `json:"ids"`
}

// revokeUser signs userID out everywhere but except, with the Store's
// user-wide revocation: every live session of the user committed before
// the statement, decided by the database.
func revokeUser(ctx context.Context, e *env, userID, except string) error {
	st, done, err := e.store(ctx)
	if err != nil {
		return err
	}
	defer done()
	ids, err := st.RevokeUser(ctx, userID, except, time.Time{})
	if err != nil {
		return err
	}
	if e.json {
		return e.writeJSON(revokeResult{Revoked: len(ids), IDs: nonNil(ids)})
	}
	fmt.Fprintf(e.out, "revoked %s of user %q\n", plural(len(ids), "session"), userID)
	return nil
}

// revokeSession signs one session out with the Store's revocation, the
// Manager's. The session is read first for its user, which the message
// names; the count is the revocation's own, so that of concurrent revokes
// of the session only the one that ended it says so.
func revokeSession(ctx context.Context, e *env, id string) error {
	st, done, err := e.store(ctx)
	if err != nil {
		return err
	}
	defer done()
	sess, found, err := st.Get(ctx, id)
	if err != nil {
		return err
	}
	revoked := false
	if found {
		if revoked, err = st.RevokeSession(ctx, id); err != nil {
			return err
		}
	}
	if e.json {
		res := revokeResult{IDs: []string{}}
		if revoked {
			res = revokeResult{Revoked: 1, IDs: []string{id}}
		}
		return e.writeJSON(res)
	}
	switch {
	case !found:
		fmt.Fprintf(e.out, "revoked 0 sessions: no live session %s\n", id[:12])
	case !revoked:
		fmt.Fprintf(e.out, "revoked 0 sessions: session %s of user %q was signed out meanwhile\n", id[:12], sess.UserID)
	default:
		fmt.Fprintf(e.out, "revoked 1 session (%s of user %q)\n", id[:12], sess.UserID)
	}
	return nil
}

// sessionJSON is a session as "sessions --json" writes it.
type sessionJSON struct {
	ID         string     `json:"id"`
	UserID     string     `json:"user_id"`
	TenantID   string     `json:"tenant_id"`
	Device     string     `json:"device"`
	CreatedAt  time.Time  `json:"created_at"`
	LastActive time.Time  `json:"last_active"`
	ExpiresAt  *time.Time `json:"expires_at"`
}

func sessionsFlags(fs *flag.FlagSet) func(context.Context, *env) error {
	var user string
	fs.StringVar(&user, "user", "", "the user ID whose sessions to list")
	return func(ctx context.Context, e *env) error {
		if strings.TrimSpace(user) == "" {
			return usagef("give --user ID (anonymous sessions belong to no user)")
		}
		st, done, err := e.store(ctx)
		if err != nil {
			return err
		}
		defer done()
		list, err := st.ListUser(ctx, user)
		if err != nil {
			return err
		}
		if e.json {
			out := make([]sessionJSON, 0, len(list))
			for _, s := range list {
				out = append(out, sessionJSON{ID: s.ID, UserID: s.UserID, TenantID: s.TenantID, Device: s.Device,
					CreatedAt: s.CreatedAt.UTC(), LastActive: s.UpdatedAt.UTC(), ExpiresAt: nullableTime(s.ExpiresAt)})
			}
			return e.writeJSON(out)
		}
		if len(list) == 0 {
			fmt.Fprintf(e.out, "user %q has no live session\n", user)
			return nil
		}
		rows := [][]string{{"ID", "DEVICE", "CREATED", "LAST ACTIVE", "EXPIRES"}}
		for _, s := range list {
			device := s.Device
			if device == "" {
				device = "-"
			}
			rows = append(rows, []string{s.ID[:12], device, showTime(s.CreatedAt, "-"),
				showTime(s.UpdatedAt, "-"), showTime(s.ExpiresAt, "never")})
		}
		if err := writeTable(e, rows, 0); err != nil {
			return err
		}
		fmt.Fprintf(e.out, "%s of user %q\n", plural(len(list), "live session"), user)
		return nil
	}
}

// countsJSON is one Counts as "stats --json" writes it.
type countsJSON struct {
	TenantID   *string    `json:"tenant_id,omitempty"`
	SignedIn   int64      `json:"signed_in"`
	Anonymous  int64      `json:"anonymous"`
	Expired    int64      `json:"expired"`
	Tombstones int64      `json:"tombstones"`
	Oldest     *time.Time `json:"oldest"`
	Newest     *time.Time `json:"newest"`
}

func statsFlags(fs *flag.FlagSet) func(context.Context, *env) error {
	var byTenant bool
	fs.BoolVar(&byTenant, "by-tenant", false, "one line per tenant")
	return func(ctx context.Context, e *env) error {
		st, done, err := e.store(ctx)
		if err != nil {
			return err
		}
		defer done()
		counts, err := st.Count(ctx, byTenant)
		if err != nil {
			return err
		}
		if e.json {
			out := make([]countsJSON, 0, len(counts))
			for _, c := range counts {
				j := countsJSON{SignedIn: c.SignedIn, Anonymous: c.Anonymous, Expired: c.Expired,
					Tombstones: c.Tombstones, Oldest: nullableTime(c.Oldest), Newest: nullableTime(c.Newest)}
				if byTenant {
					j.TenantID = &c.TenantID
				}
				out = append(out, j)
			}
			if !byTenant {
				return e.writeJSON(out[0])
			}
			return e.writeJSON(out)
		}
		return writeCounts(e, st.TableName(), counts, byTenant)
	}
}

// writeCounts writes Count's result as a table.
func writeCounts(e *env, table string, counts []gormsession.Counts, byTenant bool) error {
	head := []string{"SIGNED IN", "ANONYMOUS", "EXPIRED", "TOMBSTONES", "OLDEST", "NEWEST", ""}
	if byTenant {
		head = append([]string{"TENANT"}, head...)
	}
	rows := [][]string{head}
	for _, c := range counts {
		row := []string{fmt.Sprint(c.SignedIn), fmt.Sprint(c.Anonymous), fmt.Sprint(c.Expired), fmt.Sprint(c.Tombstones),
			showTime(c.Oldest, "-"), showTime(c.Newest, "-"), ""}
		if byTenant {
			tenant := c.TenantID
			if tenant == "" {
				tenant = `""`
			}
			row = append([]string{tenant}, row...)
		}
		rows = append(rows, row)
	}
	if err := writeTable(e, rows, tabwriter.AlignRight); err != nil {
		return err
	}
	fmt.Fprintf(e.out, "table %s; live and expired by the database's clock; OLDEST and NEWEST: created, of the live sessions\n", table)
	return nil
}

func cleanupFlags(fs *flag.FlagSet) func(context.Context, *env) error {
	ttl := fs.Duration("tombstone-ttl", 24*time.Hour, "keep the tombstones of revoked sessions this long, as the instances' StoreOptions.TombstoneTTL")
	return func(ctx context.Context, e *env) error {
		if *ttl <= 0 {
			return usagef("--tombstone-ttl must be positive")
		}
		e.tombstoneTTL = *ttl
		st, done, err := e.store(ctx)
		if err != nil {
			return err
		}
		defer done()
		n, err := st.RemoveExpired(ctx)
		if err != nil {
			return err
		}
		if e.json {
			return e.writeJSON(struct {
				Expired int64 `json:"expired_removed"`
			}{n})
		}
		fmt.Fprintf(e.out, "removed %s, and the tombstones older than %v\n", plural(int(n), "expired session"), *ttl)
		return nil
	}
}

func migrateFlags(fs *flag.FlagSet) func(context.Context, *env) error {
	printDDL := fs.Bool("print", false, "write the DDL for the database's dialect instead of running it; the database is not contacted")
	return func(ctx context.Context, e *env) error {
		if *printDDL {
			return printSchema(ctx, e)
		}
		return migrate(ctx, e)
	}
}

// migrate runs the Store's migration and says what it added.
func migrate(ctx context.Context, e *env) error {
	st, done, err := e.openStore(ctx, openOptions{create: true})
	if err != nil {
		return err
	}
	defer done()
	missing, err := st.MissingSchema(ctx)
	if err != nil {
		return err
	}
	if err := st.Migrate(ctx); err != nil {
		return err
	}
	if e.json {
		return e.writeJSON(struct {
			Table string   `json:"table"`
			Added []string `json:"added"`
		}{st.TableName(), nonNil(missing)})
	}
	switch {
	case len(missing) == 0:
		fmt.Fprintf(e.out, "table %s is up to date\n", st.TableName())
	case missing[0] == "table":
		fmt.Fprintf(e.out, "created table %s\n", st.TableName())
	default:
		fmt.Fprintf(e.out, "added to table %s: %s\n", st.TableName(), strings.Join(missing, ", "))
	}
	return nil
}

// printSchema writes the DDL Migrate would run on an empty database.
func printSchema(ctx context.Context, e *env) error {
	st, done, err := e.openStore(ctx, openOptions{offline: true})
	if err != nil {
		return err
	}
	defer done()
	stmts, err := st.SchemaSQL()
	if err != nil {
		return err
	}
	if e.json {
		type stmtJSON struct {
			SQL             string `json:"sql"`
			DialectSpecific string `json:"dialect_specific,omitempty"`
		}
		out := make([]stmtJSON, 0, len(stmts))
		for _, s := range stmts {
			out = append(out, stmtJSON{s.SQL, s.DialectSpecific})
		}
		return e.writeJSON(out)
	}
	t, _ := parseDSN(e.conn.dsn)
	fmt.Fprintf(e.out, "-- The gormsession sessions table %s on %s, as migrate creates it.\n"+
		"-- Statements marked dialect-specific exist only on this dialect or take a form only it has.\n",
		st.TableName(), t.dialect)
	for _, s := range stmts {
		e.out.WriteString("\n")
		if s.DialectSpecific != "" {
			fmt.Fprintf(e.out, "-- dialect-specific: %s\n", s.DialectSpecific)
		}
		fmt.Fprintf(e.out, "%s;\n", s.SQL)
	}
	return nil
}

// writeTable writes rows as columns aligned with spaces.
func writeTable(e *env, rows [][]string, flags uint) error {
	tw := tabwriter.NewWriter(e.out, 0, 4, 2, ' ', flags)
	for _, row := range rows {
		if _, err := io.WriteString(tw, strings.Join(row, "\t")+"\n"); err != nil {
			return err
		}
	}
	return tw.Flush()
}

// plural returns "1 session" or "n sessions".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// nonNil returns s, or an empty slice for nil (JSON [] rather than null).
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
