package gorillastore

import (
	"net/http/httptest"
	"testing"
)

func TestRequestHasCookie(t *testing.T) {
	tests := []struct {
		headers []string
		want    bool
	}{
		{nil, false},
		{[]string{"sid=v"}, true},
		{[]string{"sid=w"}, false},
		{[]string{"a=1; sid=v; b=2"}, true},
		{[]string{" a=1 ;  sid=v  "}, true},
		{[]string{`sid="v"`}, true},
		{[]string{"xsid=v; sidx=v; sid=vv; sid"}, false},
		{[]string{"a=1", "sid=w; sid=v"}, true},
		{[]string{"sid=v=; a=v"}, false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		for _, h := range tt.headers {
			r.Header.Add("Cookie", h)
		}
		if got := requestHasCookie(r, "sid", "v"); got != tt.want {
			t.Errorf("requestHasCookie(%q) = %v, want %v", tt.headers, got, tt.want)
		}
	}
}
