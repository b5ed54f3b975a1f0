package exampleapp

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/gormsession/gormsession/internal/testdb"
)

func TestSessionKeyIsMadeOnceAndKept(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d testdb.DB) {
		ctx := context.Background()
		// Instances starting together on one database agree on one key.
		keys := make([][]byte, 4)
		var wg sync.WaitGroup
		for i := range keys {
			db := d.Open(t)
			wg.Go(func() {
				k, err := SessionKey(ctx, db, d.Table, "app")
				if err != nil {
					t.Error(err)
				}
				keys[i] = k
			})
		}
		wg.Wait()
		for _, k := range keys {
			if len(k) < minKeyLen || !bytes.Equal(k, keys[0]) {
				t.Fatalf("keys %q and %q: want one key of at least %d bytes", k, keys[0], minKeyLen)
			}
		}
		// A later run, on a new connection pool, reads the same key.
		again, err := SessionKey(ctx, d.Open(t), d.Table, "app")
		if err != nil || !bytes.Equal(again, keys[0]) {
			t.Fatalf("a later run got %q, %v; want %q", again, err, keys[0])
		}
		other, err := SessionKey(ctx, d.Open(t), d.Table, "another app")
		if err != nil || bytes.Equal(other, keys[0]) {
			t.Fatalf("another name got %q, %v; want a key of its own", other, err)
		}
	})
}

func TestEnvSessionKey(t *testing.T) {
	for _, tt := range []struct {
		value   string
		want    string
		wantErr bool
	}{
		{"", "", false},
		{"too short", "", true},
		{strings.Repeat("k", 32), strings.Repeat("k", 32), false},
	} {
		t.Setenv("SESSION_KEY", tt.value)
		got, err := EnvSessionKey()
		if string(got) != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("SESSION_KEY=%q: %q, %v", tt.value, got, err)
		}
	}
}

func TestRedactHidesPassword(t *testing.T) {
	for _, tt := range []struct{ dsn, want string }{
		{"postgres://app:s3cret@db.example.com/app", "postgres://app:xxxxx@db.example.com/app"},
		{"postgres://app@db.example.com/app", "postgres://app@db.example.com/app"},
		{"sessions.db", "sessions.db"},
	} {
		if got := Redact(tt.dsn); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.dsn, got, tt.want)
		}
	}
}

func TestServeOnBusyPortFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = Serve(context.Background(), ln.Addr().String(), http.NotFoundHandler())
	if err == nil {
		t.Fatal("Serve on a port in use returned nil")
	}
}

func TestServeStopsWhenContextIsDone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Serve(ctx, "127.0.0.1:0", http.NotFoundHandler()); err != nil {
		t.Fatalf("Serve after cancel: %v, want nil", err)
	}
}

func TestUsageListsEnvironment(t *testing.T) {
	var f Flags
	var out bytes.Buffer
	fs := NewFlagSet("demo", "demo: a test.", "demo.db", &f, SessionKeyEnv)
	fs.SetOutput(&out)
	if err := fs.Parse([]string{"-h"}); err == nil {
		t.Fatal("-h gave no flag.ErrHelp")
	}
	for _, want := range []string{"ADDR", "DATABASE_URL", "SESSION_KEY", "127.0.0.1:8080", "demo.db"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage does not mention %s:\n%s", want, out.String())
		}
	}
}
