package gorillastore

import (
	"fmt"
	"sync"
	"testing"
)

// TestIssuedValuesIndexFollowsTheEntries: the index of issued cookie values
// finds exactly the value each entry holds now: not a value issued before
// it, nor the value of an entry removed or evicted, so that it stays as
// bounded as the cache.
func TestIssuedValuesIndexFollowsTheEntries(t *testing.T) {
	var c valuesCache
	id := func(i int) string { return fmt.Sprintf("%064x", i) }
	value := func(i, gen int) string { return fmt.Sprintf("value-%d-%d", i, gen) }

	c.issue(id(1), issuedCookie{value: value(1, 0), token: "t1"})
	c.put(id(1), []byte("data"), map[any]any{"k": "v"})
	if ic, ok := c.issuedAs(value(1, 0)); !ok || ic.token != "t1" {
		t.Fatalf("issued value: %+v, %v", ic, ok)
	}
	c.issue(id(1), issuedCookie{value: value(1, 1), token: "t1"})
	if _, ok := c.issuedAs(value(1, 0)); ok {
		t.Fatal("the value issued before is still found")
	}
	if _, ok := c.issuedAs(value(1, 1)); !ok {
		t.Fatal("the new value is not found")
	}
	c.remove(id(1))
	if _, ok := c.issuedAs(value(1, 1)); ok {
		t.Fatal("the value of a removed entry is still found")
	}

	// Far more sessions than the cache holds: evicted entries take their
	// values out of the index.
	const n = 4 * cacheShards * cacheShardCap
	for i := range n {
		c.issue(id(i), issuedCookie{value: value(i, 0), token: "t"})
	}
	entries, indexed := 0, 0
	for i := range c.shards {
		entries += len(c.shards[i].m)
		indexed += len(c.issues[i].m)
	}
	if entries > cacheShards*cacheShardCap || indexed != entries {
		t.Fatalf("%d entries, %d indexed values; want as many, at most %d", entries, indexed, cacheShards*cacheShardCap)
	}
	found := 0
	for i := range n {
		if ic, ok := c.issuedAs(value(i, 0)); ok {
			found++
			if got, _ := c.issued(id(i)); got.value != ic.value {
				t.Fatalf("value %d found for another entry", i)
			}
		}
	}
	if found != entries {
		t.Fatalf("%d values found, want %d", found, entries)
	}
}

// TestIssuedValuesIndexUnderConcurrency: sessions issued, re-issued,
// primed and removed from several goroutines at once, with the shards
// evicting: a value is only ever found with the token it was issued with,
// and the index never lists more values than the cache holds entries.
func TestIssuedValuesIndexUnderConcurrency(t *testing.T) {
	var c valuesCache
	const workers, rounds = 4, 4000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				n := w*rounds + i
				id := fmt.Sprintf("%063x%x", n, n%16)
				token := "token-" + id
				for gen := range 3 {
					value := fmt.Sprintf("%s-%d", token, gen)
					c.issue(id, issuedCookie{value: value, token: token})
					if gen == 1 {
						c.put(id, []byte("data"), map[any]any{"n": n})
					}
					if ic, ok := c.issuedAs(value); ok && (ic.token != token || ic.value != value) {
						t.Errorf("value %s found with token %s", value, ic.token)
						return
					}
				}
				if i%3 == 0 {
					c.remove(id)
					if _, ok := c.issuedAs(fmt.Sprintf("%s-%d", token, 2)); ok {
						t.Errorf("value of removed session %s still found", id)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	entries, indexed := 0, 0
	for i := range c.shards {
		for _, e := range c.shards[i].m {
			if e.cookie.value != "" {
				entries++
			}
		}
		indexed += len(c.issues[i].m)
	}
	if indexed != entries {
		t.Fatalf("%d indexed values for %d entries with a cookie", indexed, entries)
	}
}
