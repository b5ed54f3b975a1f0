package ginmiddleware_test

import (
	"testing"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/ginmiddleware"
)

func TestDeviceLabelIsTheRootPackages(t *testing.T) {
	for _, ua := range []string{
		"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
		"curl/8.5.0",
		"",
	} {
		if got, want := ginmiddleware.DeviceLabel(ua), gormsession.DeviceLabel(ua); got != want {
			t.Errorf("ginmiddleware.DeviceLabel(%q) = %q, gormsession.DeviceLabel = %q", ua, got, want)
		}
	}
}
