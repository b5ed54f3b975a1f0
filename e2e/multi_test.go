package e2e

// Several instances of examples/ginapp on one PostgreSQL: what one instance
// revokes, the others reject, within the poll interval or, with NOTIFY,
// within milliseconds.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gormsession/gormsession/internal/testdb"
)

// client is a goroutine-safe JSON API client of the app.
var client = &http.Client{Timeout: 10 * time.Second}

// login signs in with the JSON API and returns the token, or the status
// when the sign-in was refused or failed.
func login(base, user string) (token string, status int, err error) {
	body := fmt.Sprintf(`{"username":%q,"password":"password"}`, user)
	resp, err := client.Post(base+"/api/login", "application/json", strings.NewReader(body))
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", resp.StatusCode, nil
	}
	var out struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return "", resp.StatusCode, err
	}
	return out.Token, resp.StatusCode, nil
}

// bearer sends a request with a bearer token and returns the status.
func bearer(method, target, token string) (int, error) {
	req, err := http.NewRequest(method, target, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func me(t *testing.T, base, token string) int {
	t.Helper()
	status, err := bearer(http.MethodGet, base+"/api/me", token)
	if err != nil {
		t.Fatal(err)
	}
	return status
}

func mustLogin(t *testing.T, base, user string) string {
	t.Helper()
	token, status, err := login(base, user)
	if err != nil || status != http.StatusOK {
		t.Fatalf("sign-in of %s at %s: status %d, err %v", user, base, status, err)
	}
	return token
}

// freshTable returns a table name of the test's own on db, dropped at the
// end.
func freshTable(t *testing.T, dsn string) string {
	t.Helper()
	_, db := postgresDSN(t)
	table := testdb.UniqueName("gs_multi_")
	t.Cleanup(func() { db.Exec(`DROP TABLE IF EXISTS "` + table + `"`) })
	return table
}

// revocationLatencies revokes n sessions on a and measures, for each, how
// long until b rejects the token.
func revocationLatencies(t *testing.T, a, b *App, n int, limit time.Duration) []time.Duration {
	t.Helper()
	var lat []time.Duration
	for i := range n {
		token := mustLogin(t, a.BaseURL, []string{"alice", "bob"}[i%2])
		if s := me(t, b.BaseURL, token); s != http.StatusOK { // read-through on b
			t.Fatalf("a session created on A is unknown on B: %d", s)
		}
		if s, err := bearer(http.MethodPost, a.BaseURL+"/api/logout", token); err != nil || s >= 300 {
			t.Fatalf("logout on A: %d, %v", s, err)
		}
		start := time.Now()
		for me(t, b.BaseURL, token) != http.StatusUnauthorized {
			if time.Since(start) > limit {
				t.Fatalf("revocation %d not seen on B after %v", i, limit)
			}
			time.Sleep(time.Millisecond)
		}
		lat = append(lat, time.Since(start))
	}
	return lat
}

func summarize(lat []time.Duration) (median, p99, maxLat time.Duration) {
	s := slices.Clone(lat)
	slices.Sort(s)
	return s[len(s)/2], s[(len(s)*99)/100], s[len(s)-1]
}

func TestRevocationReachesOtherInstance(t *testing.T) {
	dsn, _ := postgresDSN(t)
	for _, tt := range []struct {
		name  string
		args  []string
		limit time.Duration // the bound the issue sets
	}{
		// Polling alone: every 500 ms, so a revocation is seen within 1 s.
		{"polling", []string{"-sync", "500ms"}, time.Second},
		// NOTIFY, with polling so rare it cannot explain the figure.
		{"notify", []string{"-sync", "1h", "-notify"}, 100 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-table", freshTable(t, dsn)}, tt.args...)
			a := StartApp(t, AppOptions{DatabaseURL: dsn, Args: args})
			b := StartApp(t, AppOptions{DatabaseURL: dsn, Args: args})
			time.Sleep(200 * time.Millisecond) // let B's listener start
			n := 100
			if testing.Short() {
				n = 10
			}
			lat := revocationLatencies(t, a, b, n, 5*time.Second)
			median, p99, maxLat := summarize(lat)
			t.Logf("%s: %d revocations on A rejected on B after median %v, p99 %v, max %v",
				tt.name, len(lat), median.Round(time.Microsecond), p99.Round(time.Microsecond), maxLat.Round(time.Microsecond))
			if maxLat > tt.limit {
				t.Errorf("slowest revocation took %v, want under %v", maxLat, tt.limit)
			}
		})
	}
}

// TestInstancesStartTogether starts 4 app processes at the same moment on
// an empty table: every one must come up (migrations are serialized).
func TestInstancesStartTogether(t *testing.T) {
	dsn, _ := postgresDSN(t)
	args := []string{"-table", freshTable(t, dsn), "-sync", "1s"}
	started := make(chan *App, 4)
	// StartApp must run on a test goroutine: start the four in parallel
	// subtests, released together.
	t.Run("start", func(t *testing.T) {
		for i := range 4 {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				started <- StartApp(t, AppOptions{DatabaseURL: dsn, Args: args})
			})
		}
	})
	close(started)
	if n := len(started); n != 4 {
		t.Fatalf("%d of 4 instances came up", n)
	}
}
