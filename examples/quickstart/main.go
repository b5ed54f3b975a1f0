// Command quickstart is gormsession from start to end in one program: it
// opens a SQLite file, migrates the sessions table, signs a user in on two
// devices, resolves their sessions through the net/http middleware, lists
// them, rotates a token, signs one device out and then every device.
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/gormsession/gormsession"
)

func main() {
	if err := run(context.Background(), "quickstart.db", os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, path string, out io.Writer) (err error) {
	// Open the database and migrate: NewStore creates the sessions table,
	// or adds what an older one lacks. Then load the sessions into memory.
	db, err := gorm.Open(sqlite.Open(path+"?_journal_mode=WAL&_busy_timeout=5000"),
		&gorm.Config{Logger: logger.Discard})
	if err != nil {
		return err
	}
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	defer sqlDB.Close()
	store, err := gormsession.NewStore(db, gormsession.StoreOptions{})
	if err != nil {
		return err
	}
	m, err := gormsession.NewManager(ctx, store, gormsession.ManagerOptions{})
	if err != nil {
		return err
	}
	defer func() {
		if closeErr := m.Close(); err == nil {
			err = closeErr
		}
	}()

	// The app: a sign-in that sets the session cookie, and a page that
	// needs a session. The middleware resolves the cookie or an
	// "Authorization: Bearer" token from memory, with no SQL.
	cookies := gormsession.CookieOptions{Insecure: true} // plain HTTP in this demo
	mux := http.NewServeMux()
	mux.HandleFunc("POST /signin", func(w http.ResponseWriter, r *http.Request) {
		// Check the password here. Create writes the row before it hands
		// out the token: a restart cannot forget a signed-in user.
		s, err := m.Create(r.Context(), gormsession.Attributes{
			UserID: r.FormValue("user"),
			Device: gormsession.DeviceLabel(r.UserAgent()),
		})
		if err != nil {
			http.Error(w, "try again shortly", http.StatusServiceUnavailable)
			return
		}
		http.SetCookie(w, cookies.Cookie(s, time.Now()))
	})
	mux.HandleFunc("GET /me", func(w http.ResponseWriter, r *http.Request) {
		s, ok := gormsession.FromContext(r.Context())
		if !ok {
			http.Error(w, "sign in first", http.StatusUnauthorized)
			return
		}
		if _, err := fmt.Fprintf(w, "hello %s on %s", s.UserID, s.Device); err != nil {
			log.Print(err)
		}
	})
	srv := httptest.NewServer(gormsession.Middleware(m, cookies)(mux))
	defer srv.Close()

	// say prints a line of the program's output.
	say := func(format string, args ...any) error {
		_, err := fmt.Fprintf(out, format+"\n", args...)
		return err
	}
	// show prints what GET /me answers to a client, with a bearer token
	// when token is not empty.
	show := func(label string, c *http.Client, token string) error {
		req, err := http.NewRequestWithContext(ctx, "GET", srv.URL+"/me", nil)
		if err != nil {
			return err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		status, body, err := send(c, req)
		if err != nil {
			return err
		}
		return say("%-18s %d %s", label+":", status, body)
	}

	// A browser signs in with a form and keeps the cookie.
	jar, err := cookiejar.New(nil)
	if err != nil {
		return err
	}
	browser := &http.Client{Jar: jar}
	form := strings.NewReader(url.Values{"user": {"alice"}}.Encode())
	req, err := http.NewRequestWithContext(ctx, "POST", srv.URL+"/signin", form)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
	if status, body, err := send(browser, req); err != nil || status != http.StatusOK {
		return fmt.Errorf("sign in: %d %s %v", status, body, err)
	}
	if err := show("browser", browser, ""); err != nil {
		return err
	}

	// An app gets a bearer token.
	phone, err := m.Create(ctx, gormsession.Attributes{UserID: "alice", Device: "Phone app"})
	if err != nil {
		return err
	}
	if err := show("phone", http.DefaultClient, phone.Token); err != nil {
		return err
	}

	// "Your devices": alice's sessions, from memory.
	var devices []string
	for _, s := range m.ListUser("alice") {
		devices = append(devices, s.Device)
	}
	slices.Sort(devices)
	if err := say("alice's devices:   %s", strings.Join(devices, ", ")); err != nil {
		return err
	}

	// After a privilege change, rotate: a new token, the old one is dead.
	rotated, err := m.Rotate(ctx, phone.Token)
	if err != nil {
		return err
	}
	if err := show("phone, old token", http.DefaultClient, phone.Token); err != nil {
		return err
	}
	if err := show("phone, new token", http.DefaultClient, rotated.Token); err != nil {
		return err
	}

	// From the phone, sign out every other device: the browser.
	n, err := m.RevokeOthers(ctx, "alice", rotated.ID)
	if err != nil {
		return err
	}
	if err := say("signed out:        %d other device(s)", n); err != nil {
		return err
	}
	if err := show("browser", browser, ""); err != nil {
		return err
	}

	// Sign out everywhere.
	if n, err = m.RevokeUser(ctx, "alice"); err != nil {
		return err
	}
	if err := say("signed out:        %d device(s) everywhere", n); err != nil {
		return err
	}
	return show("phone", http.DefaultClient, rotated.Token)
}

// send sends req and returns the response's status and body.
func send(c *http.Client, req *http.Request) (int, string, error) {
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body)), err
}
