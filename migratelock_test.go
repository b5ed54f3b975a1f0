package gormsession

import (
	"strings"
	"testing"

	"github.com/gormsession/gormsession/internal/testdb"
)

// The test helper that drops tables and the notify function must take the
// lock that Migrate takes, and drop the function Migrate installs;
// otherwise it could drop the function under a migration running at the
// same time.
func TestTestCleanupSharesMigrationLockAndFunction(t *testing.T) {
	if testdb.MigrationLockKey != migrationLockKey {
		t.Errorf("testdb.MigrationLockKey = %d, Migrate locks %d", testdb.MigrationLockKey, migrationLockKey)
	}
	if !strings.Contains(notifyFunction, "FUNCTION "+testdb.NotifyFunction+"()") {
		t.Errorf("testdb drops %s(), Migrate installs:\n%s", testdb.NotifyFunction, notifyFunction)
	}
}
