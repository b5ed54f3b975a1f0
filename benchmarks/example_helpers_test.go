package benchmarks

import (
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
)

// openDatabase opens the application's database, for the examples.
func openDatabase() (*gorm.DB, error) {
	return gorm.Open(sqlite.Open("app.db?_journal_mode=WAL&_busy_timeout=10000"), &gorm.Config{})
}
