package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// rawRequest sends head (the request line and headers, without the blank
// line) and body to srv over a plain TCP connection, then returns every
// response the server sends before the final one's status, and that one.
// body is written from another goroutine, as a client streaming an upload
// would, so that a server answering early is seen doing so.
func rawRequest(t *testing.T, srvURL, head, body string) (interim []int, final *http.Response) {
	t.Helper()
	u, err := url.Parse(srvURL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Fprintf(conn, "%s\r\nHost: %s\r\n\r\n", head, u.Host); err != nil {
		t.Fatal(err)
	}
	if body != "" {
		go func() { _, _ = conn.Write([]byte(body)) }() // fails once the server has closed: expected
	}
	br := bufio.NewReader(conn)
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("reading the answer: %v (interim responses %v)", err, interim)
		}
		if resp.StatusCode >= 200 {
			t.Cleanup(func() { resp.Body.Close() })
			return interim, resp
		}
		interim = append(interim, resp.StatusCode)
	}
}

// chunked encodes body as one chunk and the last chunk.
func chunked(body string) string {
	return fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body), body)
}

// TestOversizedBodiesAreAnswered413: a request that declares a body over
// the limit is answered 413 before any of the body is read (so an
// "Expect: 100-continue" client is never told to send it, and one that
// does not wait gets the answer all the same); a chunked body keeps the
// limit; bodies within it work, chunked or not.
func TestOversizedBodiesAreAnswered413(t *testing.T) {
	srv, _ := startTestApp(t)
	big := strings.Repeat("x", 2<<20)
	overChunked := `{"username":"` + strings.Repeat("a", maxBody) + `","password":"password"}`
	login := `{"username":"alice","password":"password"}`

	t.Run("declared, Expect 100-continue", func(t *testing.T) {
		interim, resp := rawRequest(t, srv.URL, fmt.Sprintf(
			"POST /api/login HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue", len(big)), "")
		if resp.StatusCode != http.StatusRequestEntityTooLarge || len(interim) != 0 {
			t.Fatalf("got %v then %d, want 413 and no 100 Continue", interim, resp.StatusCode)
		}
	})
	t.Run("declared, body sent at once", func(t *testing.T) {
		_, resp := rawRequest(t, srv.URL, fmt.Sprintf(
			"POST /api/login HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: %d", len(big)), big)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !resp.Close {
			t.Fatalf("got %d (close %v), want 413 and the connection closed", resp.StatusCode, resp.Close)
		}
	})
	t.Run("chunked JSON over the limit", func(t *testing.T) {
		_, resp := rawRequest(t, srv.URL,
			"POST /api/login HTTP/1.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked", chunked(overChunked))
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("got %d, want 413", resp.StatusCode)
		}
	})
	t.Run("chunked form over the limit", func(t *testing.T) {
		form := "username=alice&password=" + strings.Repeat("p", maxBody)
		_, resp := rawRequest(t, srv.URL,
			"POST /signin HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nSec-Fetch-Site: same-origin\r\nTransfer-Encoding: chunked", chunked(form))
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("got %d, want 413", resp.StatusCode)
		}
	})
	t.Run("chunked JSON within the limit", func(t *testing.T) {
		_, resp := rawRequest(t, srv.URL,
			"POST /api/login HTTP/1.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked", chunked(login))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("got %d, want 200", resp.StatusCode)
		}
	})
	t.Run("declared within the limit, Expect 100-continue", func(t *testing.T) {
		interim, resp := rawRequest(t, srv.URL, fmt.Sprintf(
			"POST /api/login HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue", len(login)), login)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("got %v then %d, want 200", interim, resp.StatusCode)
		}
	})
}
