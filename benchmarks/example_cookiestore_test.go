package benchmarks

import (
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
