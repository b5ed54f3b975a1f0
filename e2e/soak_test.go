package e2e

// A soak: a load generator against examples/ginapp on loopback, mixing
// resolves, sign-ins and sign-outs, with the app's memory sampled as it
// runs.

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// soakDuration is GORMSESSION_SOAK (a Go duration), default 10s; the
// figures in the README come from a 60s run.
func soakDuration(t *testing.T) time.Duration {
	d := 10 * time.Second
	if s := os.Getenv("GORMSESSION_SOAK"); s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			t.Fatalf("GORMSESSION_SOAK: %v", err)
		}
	}
	return d
}

// rssKB reads the resident memory of a process from /proc.
func rssKB(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.Atoi(strings.Fields(rest)[0])
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak skipped in -short mode")
	}
	duration := soakDuration(t)
	app := StartApp(t, AppOptions{})
	pid := app.cmd.Process.Pid

	// A pool of signed-in tokens, refilled by sign-ins, drained by
	// sign-outs.
	var (
		poolMu sync.Mutex
		pool   []string
	)
	for range 20 {
		pool = append(pool, mustLogin(t, app.BaseURL, "alice"))
	}
	type result struct {
		op      string
		status  int
		err     error
		latency time.Duration
	}
	results := make(chan result, 4096)
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for !stop.Load() {
				start := time.Now()
				var res result
				switch x := r.IntN(100); {
				case x < 90: // resolve
					poolMu.Lock()
					token := pool[r.IntN(len(pool))]
					poolMu.Unlock()
					res.op = "resolve"
					res.status, res.err = bearer(http.MethodGet, app.BaseURL+"/api/me", token)
				case x < 95: // sign in
					res.op = "sign-in"
					var token string
					token, res.status, res.err = login(app.BaseURL, []string{"alice", "bob"}[x%2])
					if token != "" {
						poolMu.Lock()
						pool = append(pool, token)
						poolMu.Unlock()
					}
				default: // sign out
					res.op = "sign-out"
					poolMu.Lock()
					if len(pool) <= 10 {
						poolMu.Unlock()
						continue
					}
					i := r.IntN(len(pool))
					token := pool[i]
					pool = slices.Delete(pool, i, i+1)
					poolMu.Unlock()
					res.status, res.err = bearer(http.MethodPost, app.BaseURL+"/api/logout", token)
				}
				res.latency = time.Since(start)
				results <- res
			}
		})
	}

	latencies := map[string][]time.Duration{}
	counts := map[string]int{}
	var errs []string
	var rss []int
	done := time.After(duration)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
loop:
	for {
		select {
		case res := <-results:
			counts[res.op]++
			latencies[res.op] = append(latencies[res.op], res.latency)
			if res.err != nil || res.status >= 500 {
				errs = append(errs, fmt.Sprintf("%s: %d %v", res.op, res.status, res.err))
			}
		case <-tick.C:
			kb, err := rssKB(pid)
			if err != nil {
				t.Fatalf("the app is gone: %v", err)
			}
			rss = append(rss, kb)
		case <-done:
			break loop
		}
	}
	stop.Store(true)
	go func() {
		for range results {
		}
	}()
	wg.Wait()
	close(results)

	for _, op := range []string{"resolve", "sign-in", "sign-out"} {
		t.Logf("%-8s %6d requests  p50 %8v  p99 %8v", op, counts[op],
			percentile(latencies[op], 0.50).Round(time.Microsecond), percentile(latencies[op], 0.99).Round(time.Microsecond))
	}
	warm := rss[len(rss)/4]
	last := slices.Max(rss[len(rss)*3/4:])
	t.Logf("resident memory: %d KB after warm-up, %d KB at most in the last quarter (%d samples over %v)", warm, last, len(rss), duration)
	if len(errs) > 0 {
		t.Fatalf("%d failed or 5xx requests, first: %s", len(errs), errs[0])
	}
	if counts["resolve"] == 0 || counts["sign-in"] == 0 || counts["sign-out"] == 0 {
		t.Fatalf("the mix did not run: %v", counts)
	}
	// Flat: at most a quarter more than after warm-up (plus 4 MB of slack for
	// the runtime's heap target moving).
	if float64(last) > float64(warm)*1.25+4096 {
		t.Fatalf("resident memory grew from %d KB to %d KB after warm-up", warm, last)
	}
}
