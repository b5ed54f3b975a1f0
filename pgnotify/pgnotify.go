// Package pgnotify carries session changes between instances of an
// application on PostgreSQL with LISTEN/NOTIFY, so that a revocation on one
// instance is seen on the others within milliseconds rather than at the
// next poll.
//
// The Store's migration installs a trigger that announces every change to
// the sessions table on a channel named after the table. A Listener waits
// on that channel and wakes the Manager, which then reads the change feed:
//
//	store, _ := gormsession.NewStore(db, gormsession.StoreOptions{})
//	m, _ := gormsession.NewManager(ctx, store, gormsession.ManagerOptions{
//		Notifier: pgnotify.New(db, store.TableName()), // polling stays as the safety net
//	})
//
// The Listener holds one connection of the *gorm.DB's pool while it
// listens; the pool must allow it (database/sql's default has no limit).
package pgnotify

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

	"github.com/gormsession/gormsession"
)

// Listener is a gormsession.ChangeNotifier on PostgreSQL LISTEN.
type Listener struct {
	db      *gorm.DB
	channel string
}

var _ gormsession.ChangeNotifier = (*Listener)(nil)

// New returns a Listener for the changes of the sessions table named table
// (as given to the Store, schema.table or not) on db, which must have been
// opened with gorm.io/driver/postgres (the pgx driver). The Store's trigger
// announces them on a channel named after the table without its schema.
func New(db *gorm.DB, table string) *Listener {
	if i := strings.LastIndexByte(table, '.'); i >= 0 {
		table = table[i+1:]
	}
	return &Listener{db: db, channel: table}
}

// pgxConner is the pgx stdlib connection, which exposes its *pgx.Conn.
type pgxConner interface{ Conn() *pgx.Conn }

// Listen takes a connection from the pool, LISTENs on the channel and calls
// wake for every notification until ctx is done (it then returns nil) or
// the connection fails. It calls wake once as soon as it listens, since
// changes may have been missed while it was not. The connection is closed
// afterwards rather than returned to the pool in the LISTEN state.
func (l *Listener) Listen(ctx context.Context, wake func()) error {
	sqlDB, err := l.db.DB()
	if err != nil {
		return fmt.Errorf("pgnotify: %w", err)
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("pgnotify: connect: %w", err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		pc, ok := dc.(pgxConner)
		if !ok {
			return fmt.Errorf("pgnotify: %T is not a pgx connection (open the database with gorm.io/driver/postgres): %w", dc, driver.ErrBadConn)
		}
		c := pc.Conn()
		if _, err := c.Exec(ctx, "LISTEN "+pgx.Identifier{l.channel}.Sanitize()); err != nil {
			return errors.Join(fmt.Errorf("pgnotify: listen %s: %w", l.channel, err), driver.ErrBadConn)
		}
		wake()
		for {
			if _, err := c.WaitForNotification(ctx); err != nil {
				// Discard the connection: it is still listening.
				return errors.Join(fmt.Errorf("pgnotify: wait on %s: %w", l.channel, err), driver.ErrBadConn)
			}
			wake()
		}
	})
	if ctx.Err() != nil {
		return nil
	}
	return err
}
