// Package e2e holds the end-to-end tests: real processes of the example
// apps, real browsers and every database the library supports.
package e2e

import (
	"os"
	"strings"
)

// requireDB reports whether GORMSESSION_REQUIRE_DB (a comma-separated list)
// names the database, in which case an unreachable one fails the test
// instead of skipping it.
func requireDB(name string) bool {
	for _, n := range strings.Split(os.Getenv("GORMSESSION_REQUIRE_DB"), ",") {
		if strings.TrimSpace(n) == name {
			return true
		}
	}
	return false
}
