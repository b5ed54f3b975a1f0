package benchmarks

import (
	"net/http"
	"time"

	"github.com/wader/gormstore/v2"
	"gorm.io/gorm"
)

// The examples of the example_*_test.go files are the code of
// docs/migrating.md: TestMigratingGuideSnippetsAreCompiled checks that
// every snippet of the guide is in one of them, verbatim.

// waderSetup is the wader/gormstore setup the guide starts from.
func waderSetup(db *gorm.DB, hashKey []byte) *gormstore.Store {
	store := gormstore.NewOptions(db, gormstore.Options{TableName: "sessions"}, hashKey)
	store.SessionOpts.Secure = true
	store.SessionOpts.HttpOnly = true
	store.SessionOpts.MaxAge = 60 * 60 * 24 * 60

	quit := make(chan struct{})
	go store.PeriodicCleanup(time.Hour, quit)
	// close(quit) when the application stops.
	return store
}

func Example_waderBefore() {
	db, err := openDatabase()
	if err != nil {
		return
	}
	store := waderSetup(db, hashKey)
	_ = http.ListenAndServe("127.0.0.1:8080", counter(store))
}
