package gormsession

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

// digestOf returns the digest whose hex is id.
func digestOf(t *testing.T, id string) *[sha256.Size]byte {
	t.Helper()
	var sum [sha256.Size]byte
	if _, err := hex.Decode(sum[:], []byte(id)); err != nil {
		t.Fatal(err)
	}
	return &sum
}

// TestSessionMapKeepsIDsThatShareAPrefix checks the map with two IDs whose
// first 8 digest bytes are equal, which share a key: each is found by ID
// and by digest, a replacement stays where its ID is, and deleting one
// leaves the other.
func TestSessionMapKeepsIDsThatShareAPrefix(t *testing.T) {
	shared := strings.Repeat("ab", 8)
	a := shared + strings.Repeat("01", 24)
	b := shared + strings.Repeat("02", 24)
	other := strings.Repeat("cd", 32)
	sm := newSessionMap()
	entries := map[string]*entry{}
	for _, id := range []string{a, b, other} {
		e := newEntry(&Session{ID: id, Version: 1}, "u")
		entries[id] = e
		sm.set(e)
	}
	if sm.len() != 3 || len(sm.clashes) != 1 {
		t.Fatalf("len %d, clashes %d; want 3 and 1", sm.len(), len(sm.clashes))
	}
	for id, e := range entries {
		if got := sm.get(id); got != e {
			t.Errorf("get(%s…) = %v, want its entry", id[:20], got)
		}
		if got := sm.getDigest(digestOf(t, id)); got != e {
			t.Errorf("getDigest(%s…) = %v, want its entry", id[:20], got)
		}
	}
	missing := shared + strings.Repeat("03", 24)
	if sm.get(missing) != nil || sm.getDigest(digestOf(t, missing)) != nil {
		t.Error("an ID not held, with a held prefix, was found")
	}

	// A new version of the clashing ID replaces it, wherever it is kept.
	b2 := newEntry(&Session{ID: b, Version: 2}, "u")
	sm.set(b2)
	if sm.len() != 3 || sm.get(b) != b2 || sm.getDigest(digestOf(t, b)) != b2 {
		t.Fatalf("after replacing %s…: len %d, entry %v", b[:20], sm.len(), sm.get(b))
	}

	sm.del(a)
	if sm.get(a) != nil || sm.get(b) != b2 || sm.getDigest(digestOf(t, b)) != b2 || sm.len() != 2 {
		t.Fatalf("after deleting a: a %v, b %v, len %d", sm.get(a), sm.get(b), sm.len())
	}
	// With the prefix's first holder gone, the clashing ID can come back
	// under either key and is still found once.
	sm.set(entries[a])
	sm.del(b)
	if sm.get(b) != nil || sm.get(a) != entries[a] || sm.len() != 2 {
		t.Fatalf("after deleting b: a %v, b %v, len %d", sm.get(a), sm.get(b), sm.len())
	}
	n := 0
	for e := range sm.all() {
		sm.del(e.id())
		n++
	}
	if n != 2 || sm.len() != 0 {
		t.Fatalf("deleting while iterating: %d yielded, %d left", n, sm.len())
	}
}

// TestPutKeepsOnlyIDsATokenCanHave checks that a row whose ID is not the
// hex SHA-256 of a token (one written by hand, say) is not kept in memory:
// no token can ever resolve it.
func TestPutKeepsOnlyIDsATokenCanHave(t *testing.T) {
	m := newManager(nil, ManagerOptions{}.withDefaults(false), &pendingRevocations{})
	now := time.Now()
	for _, id := range []string{"", "s1", strings.Repeat("A", idLen), strings.Repeat("a", idLen+1)} {
		if e := m.put(&Session{ID: id, UserID: "u", CreatedAt: now, UpdatedAt: now, Version: 1}); e != nil {
			t.Errorf("put(%q) kept it", id)
		}
	}
	if n := m.resident(); n != 0 {
		t.Fatalf("%d sessions in memory, want 0", n)
	}
	token := NewToken()
	if e := m.put(&Session{ID: HashToken(token), UserID: "u", CreatedAt: now, UpdatedAt: now, Version: 1}); e == nil {
		t.Fatal("put of a valid ID kept nothing")
	}
	if s, ok := m.Resolve(t.Context(), token); !ok || s.UserID != "u" {
		t.Fatalf("Resolve = %+v, %v", s, ok)
	}
	if s, ok := m.Resolve(t.Context(), token+"x"); ok {
		t.Fatalf("Resolve of a longer token = %+v", s)
	}
}

// TestHex8 checks hex8 against encoding/hex.
func TestHex8(t *testing.T) {
	values := []uint32{0, 1, 9, 10, 15, 16, 0x0123abcd, 0x89abcdef, 0xfedcba98, 0xffffffff, 0xa0b0c0d0}
	for i := range uint32(100_000) {
		values = append(values, i*2654435761) // spread over the range
	}
	for _, v := range values {
		b := [4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
		var got [8]byte
		binary.BigEndian.PutUint64(got[:], hex8(v))
		if w := hex.EncodeToString(b[:]); string(got[:]) != w {
			t.Errorf("hex8(%#x) = %q, want %q", v, got, w)
		}
	}
}
