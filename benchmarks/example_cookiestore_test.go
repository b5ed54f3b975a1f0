package benchmarks

import (
	"context"
	"log/slog"

	"github.com/gorilla/sessions"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/gorillastore"
)

// cookieStoreSetup is the CookieStore setup the guide starts from.
func cookieStoreSetup(hashKey, blockKey []byte) *sessions.CookieStore {
	store := sessions.NewCookieStore(hashKey, blockKey)
	return store
}

// cookieStoreReplacement replaces cookieStoreSetup, on a Manager made as
// for wader/gormstore (newSessionStore).
func cookieStoreReplacement(m *gormsession.Manager, hashKey, blockKey []byte) *gorillastore.Store {
	store := gorillastore.New(m, hashKey, blockKey)
	return store
}

func Example_fromCookieStore() {
	db, err := openDatabase()
	if err != nil {
		return
	}
	blockKey := []byte("0123456789abcdef")
	before := cookieStoreSetup(hashKey, blockKey)
	_, m, err := newSessionStore(context.Background(), db, hashKey)
	if err != nil {
		return
	}
	defer func() {
		if err := m.Close(); err != nil {
			slog.Error("close sessions", "err", err)
		}
	}()
	after := cookieStoreReplacement(m, hashKey, blockKey)
	_, _ = before, after
}
