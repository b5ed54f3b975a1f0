package e2e

import (
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// floodVisitors is how many cookieless visitors TestCookielessFlood sends.
const floodVisitors = 40_000

// TestCookielessFlood sends 40,000 visitors without a cookie to the page
// that saves a gorilla-style session, each of which creates a session
// row. Anonymous sessions stay resident only up to a bound, so resident
// memory stops growing once the bound is reached: the test fails when the
// second 20,000 visitors grow it by more than the first 20,000 did, or
// when any request is answered 5xx. RSS and requests per second are
// logged (the README quotes them).
func TestCookielessFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("flood skipped in -short mode")
	}
	app := StartApp(t, AppOptions{})
	pid := app.cmd.Process.Pid
	noJar := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	t.Cleanup(noJar.CloseIdleConnections)
	startKB, err := rssKB(pid)
	if err != nil {
		t.Fatal(err)
	}

	var fivexx, failed atomic.Int64
	flood := func(n int) time.Duration {
		start := time.Now()
		var next atomic.Int64
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for next.Add(1) <= int64(n) {
					resp, err := noJar.Get(app.BaseURL + "/visits")
					if err != nil {
						failed.Add(1)
						continue
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode >= 500 {
						fivexx.Add(1)
					}
				}
			})
		}
		wg.Wait()
		return time.Since(start)
	}
	half := floodVisitors / 2
	d1 := flood(half)
	kb20, err := rssKB(pid)
	if err != nil {
		t.Fatal(err)
	}
	d2 := flood(half)
	kb40, err := rssKB(pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cookieless flood: RSS %d KB at start, %d KB after %d visitors, %d KB after %d; %.0f and %.0f requests/s",
		startKB, kb20, half, kb40, floodVisitors, float64(half)/d1.Seconds(), float64(half)/d2.Seconds())
	if n := fivexx.Load(); n > 0 {
		t.Fatalf("%d requests of the flood were answered 5xx", n)
	}
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d requests of the flood failed", n)
	}
	if grew1, grew2 := kb20-startKB, kb40-kb20; grew2 > max(grew1/2, 4096) {
		t.Fatalf("resident memory grew by %d KB over the second %d visitors, after %d KB over the first: it does not level off", grew2, half, grew1)
	}
}
