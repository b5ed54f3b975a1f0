// Package vary adds the request headers a session depends on to a
// response's Vary header, for the package's HTTP middleware and gin's.
package vary

import (
	"net/http"
	"strings"
)

// value is the Vary header Add sets on a response that has none. Its
// capacity is its length, so an Add to the header copies it rather than
// writing into it; nothing writes a header value in place.
var value = []string{"Cookie, Authorization"}

// Add adds Cookie and Authorization to h's Vary header, each unless it is
// there already (or Vary is "*"). A response without Vary, the common
// case, gets a shared value: no allocation.
func Add(h http.Header) {
	lines, ok := h["Vary"]
	if !ok {
		h["Vary"] = value[:1:1]
		return
	}
	var cookie, auth bool
	for _, line := range lines {
		for field := range strings.SplitSeq(line, ",") {
			switch f := strings.TrimSpace(field); {
			case f == "*":
				return
			case strings.EqualFold(f, "Cookie"):
				cookie = true
			case strings.EqualFold(f, "Authorization"):
				auth = true
			}
		}
	}
	switch {
	case !cookie && !auth:
		h["Vary"] = append(lines[:len(lines):len(lines)], value[0])
	case !cookie:
		h["Vary"] = append(lines[:len(lines):len(lines)], "Cookie")
	case !auth:
		h["Vary"] = append(lines[:len(lines):len(lines)], "Authorization")
	}
}
