package e2e

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/gormsession/gormsession"
)

// phoneUA is the User-Agent of the second device the browser test signs in
// from, over plain HTTP.
const phoneUA = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1"

// chromiumPath returns the Chromium binary, or skips the test when there is
// none (it fails instead under CI, which installs Chromium).
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no Chromium found (chromium, chromium-browser or google-chrome on PATH); CI requires it")
	}
	t.Skip("no Chromium found (chromium, chromium-browser or google-chrome on PATH)")
	return ""
}

// newBrowser starts a headless Chromium with a fresh profile and returns a
// context for its first tab. The browser stops when the test ends, or
// earlier when the context is canceled with chromedp.Cancel.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(960, 540),
	)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first run starts the browser; it must not have a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// run runs browser steps with a time limit, failing the test on error.
func run[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute) // a hang guard, not a latency bound
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("browser: %s: %v", what, err)
	}
	return v
}

func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	run(t, ctx, what, chromedp.Steps(steps...))
}

// sessionCookie returns the browser's token cookie for baseURL, or nil.
func sessionCookie(t *testing.T, ctx context.Context, baseURL string) *network.Cookie {
	t.Helper()
	res := run(t, ctx, "get cookies", func(ctx context.Context, tg *chromedp.Target) (network.GetCookiesResult, error) {
		return chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{baseURL + "/"}})
	})
	for _, c := range res.Cookies {
		if c.Name == "session" {
			return c
		}
	}
	return nil
}

// TestBrowserSignInSurvivesKill9 signs in through the form in a real
// browser, kills the server with SIGKILL, starts it again on the same port
// and database, and finds the browser still signed in; then signs out.
//
// With GORMSESSION_SCREENSHOT=path it saves the devices page there (the
// README's docs/devices.png); on failure it saves one to a temporary file
// and logs its path.
func TestBrowserSignInSurvivesKill9(t *testing.T) {
	app := StartApp(t, AppOptions{})
	ctx := newBrowser(t)
	base := app.BaseURL

	var screenshot []byte
	t.Cleanup(func() {
		if !t.Failed() || screenshot == nil {
			return
		}
		f, err := os.CreateTemp("", "gormsession-e2e-devices-*.png")
		if err == nil {
			_, err = f.Write(screenshot)
			if closeErr := f.Close(); err == nil {
				err = closeErr
			}
		}
		if err != nil {
			t.Logf("save screenshot: %v", err)
			return
		}
		t.Logf("screenshot of the devices page: %s", f.Name())
	})

	// Another device of alice's, so the devices page has two rows.
	phone := signInHTTP(t, base, "alice", phoneUA)

	do(t, ctx, "open the app",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)),
	)
	if loc := run(t, ctx, "location", chromedp.Location()); loc != base+"/signin" {
		t.Fatalf("anonymous visit to / ended at %s, want %s/signin", loc, base)
	}
	do(t, ctx, "sign in through the form",
		chromedp.SendKeys(chromedp.CSS(`input[name=username]`), "alice"),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), "password"),
		chromedp.Click(chromedp.CSS(`form[action="/signin"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`nav span.who`)),
	)
	if h1 := run(t, ctx, "home heading", chromedp.Text(chromedp.CSS(`h1`))); h1 != "Hello, alice!" {
		t.Fatalf("home page heading = %q, want %q", h1, "Hello, alice!")
	}
	cookie := sessionCookie(t, ctx, base)
	if cookie == nil || !cookie.HTTPOnly || cookie.SameSite != network.CookieSameSiteLax {
		t.Fatalf("session cookie after sign-in = %+v, want an HttpOnly SameSite=Lax cookie", cookie)
	}

	ua := run(t, ctx, "user agent", chromedp.Evaluate[string](`navigator.userAgent`))
	label := gormsession.DeviceLabel(ua)
	devices := func(when string) (thisID string) {
		t.Helper()
		do(t, ctx, when+": devices page",
			chromedp.Navigate(base+"/devices"),
			chromedp.WaitVisible(chromedp.CSS(`tr.this`)),
		)
		screenshot = run(t, ctx, "screenshot", chromedp.CaptureScreenshot())
		row := run(t, ctx, "this device's row", chromedp.Text(chromedp.CSS(`tr.this td`)))
		if !strings.Contains(row, label) || !strings.Contains(row, "this device") {
			t.Fatalf("%s: this device's row = %q, want %q marked as this device", when, row, label)
		}
		table := run(t, ctx, "devices table", chromedp.Text(chromedp.CSS(`table`)))
		if !strings.Contains(table, "Safari on iOS") {
			t.Fatalf("%s: devices table does not list the other device:\n%s", when, table)
		}
		return run(t, ctx, "this device's ID", chromedp.Value(chromedp.CSS(`tr.this input[name=id]`)))
	}
	id := devices("after sign-in")
	if path := os.Getenv("GORMSESSION_SCREENSHOT"); path != "" {
		if err := os.WriteFile(path, screenshot, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	do(t, ctx, "reload",
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(`tr.this`)),
	)
	if got := run(t, ctx, "ID after reload", chromedp.Value(chromedp.CSS(`tr.this input[name=id]`))); got != id {
		t.Fatalf("after reload this device is %s, want %s", got, id)
	}

	app.Kill()
	app.Restart()
	if app.BaseURL != base {
		t.Fatalf("restarted on %s, want %s", app.BaseURL, base)
	}
	if got := devices("after kill -9 and restart"); got != id {
		t.Fatalf("after the restart this device is %s, want %s", got, id)
	}

	do(t, ctx, "sign out everywhere else",
		chromedp.Click(chromedp.CSS(`form[action="/devices/revoke-others"] button`)),
		chromedp.WaitNotPresent(chromedp.CSS(`form[action="/devices/revoke-others"]`)),
	)
	if status := getStatus(t, phone, base+"/api/me"); status != http.StatusUnauthorized {
		t.Fatalf("the other device after sign out everywhere else: GET /api/me = %d, want 401", status)
	}

	do(t, ctx, "sign out this device",
		chromedp.Click(chromedp.CSS(`tr.this button`)),
		chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)),
	)
	if loc := run(t, ctx, "location", chromedp.Location()); loc != base+"/signin" {
		t.Fatalf("after sign-out the browser is at %s, want %s/signin", loc, base)
	}
	if c := sessionCookie(t, ctx, base); c != nil {
		t.Fatalf("session cookie still there after sign-out: %+v", c)
	}
	do(t, ctx, "home after sign-out",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)),
	)

	// Close the browser, then its connections, so SIGTERM finds none open.
	if err := chromedp.Cancel(ctx); err != nil {
		t.Fatalf("close the browser: %v", err)
	}
	if err := app.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

// signInHTTP signs user in through the form with a plain HTTP client that
// sends userAgent, and returns the client.
func signInHTTP(t *testing.T, base, user, userAgent string) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar, Timeout: time.Minute, Transport: uaTransport(userAgent)}
	resp, err := c.PostForm(base+"/signin", url.Values{"username": {user}, "password": {"password"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/" {
		t.Fatalf("sign in as %s: %d at %s, want 200 at /", user, resp.StatusCode, resp.Request.URL)
	}
	return c
}

// uaTransport sets the User-Agent of every request.
type uaTransport string

func (ua uaTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("User-Agent", string(ua))
	return http.DefaultTransport.RoundTrip(r)
}

func getStatus(t *testing.T, c *http.Client, u string) int {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
