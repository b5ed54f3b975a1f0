package gormsession

import "strings"

// maxDeviceLabel bounds the length of a label derived from an unknown
// User-Agent.
const maxDeviceLabel = 40

// uaBrowsers and uaSystems are matched in order: the first substring found
// in the User-Agent names it. Order matters because user agents claim to be
// one another ("Chrome" appears in Edge's, "Safari" in Chrome's).
var (
	uaBrowsers = []struct{ token, name string }{
		{"Edg/", "Edge"},
		{"EdgA/", "Edge"},
		{"EdgiOS/", "Edge"},
		{"Edge/", "Edge"},
		{"OPR/", "Opera"},
		{"Opera", "Opera"},
		{"SamsungBrowser/", "Samsung Internet"},
		{"YaBrowser/", "Yandex Browser"},
		{"Vivaldi/", "Vivaldi"},
		{"FxiOS/", "Firefox"},
		{"Firefox/", "Firefox"},
		{"CriOS/", "Chrome"},
		{"Chromium/", "Chromium"},
		{"Chrome/", "Chrome"},
		{"Safari/", "Safari"},
		{"MSIE ", "Internet Explorer"},
		{"Trident/", "Internet Explorer"},
	}
	uaSystems = []struct{ token, name string }{
		{"iPhone", "iOS"},
		{"iPad", "iPadOS"},
		{"iPod", "iOS"},
		{"Android", "Android"},
		{"CrOS", "ChromeOS"},
		{"Windows", "Windows"},
		{"Macintosh", "macOS"},
		{"Mac OS X", "macOS"},
		{"Linux", "Linux"},
		{"FreeBSD", "FreeBSD"},
		{"OpenBSD", "OpenBSD"},
	}
)

// DeviceLabel returns a short readable label for a User-Agent header, such
// as "Firefox on Linux", "Safari on iOS" or "Chrome" when the system is not
// named. For other clients it returns the product name the header starts
// with ("curl", "okhttp"), and "Unknown device" for an empty or unreadable
// header. Store the result in Attributes.Device to show "your devices" in
// words; ginmiddleware.Login does so when Attributes.Device is empty.
func DeviceLabel(userAgent string) string {
	browser := uaMatch(userAgent, uaBrowsers)
	system := uaMatch(userAgent, uaSystems)
	switch {
	case browser != "" && system != "":
		return browser + " on " + system
	case browser != "":
		return browser
	case strings.HasPrefix(userAgent, "Mozilla/") && system != "":
		return "Browser on " + system
	}
	if p := uaProduct(userAgent); p != "" {
		return p
	}
	if system != "" {
		return system
	}
	return "Unknown device"
}

func uaMatch(ua string, table []struct{ token, name string }) string {
	for _, e := range table {
		if strings.Contains(ua, e.token) {
			return e.name
		}
	}
	return ""
}

// uaProduct returns the leading product name of a User-Agent ("curl" of
// "curl/8.5.0"), keeping only letters, digits and "-_. " and at most
// maxDeviceLabel bytes, or "" when nothing readable is left.
func uaProduct(ua string) string {
	if i := strings.IndexAny(ua, "/("); i >= 0 {
		ua = ua[:i]
	}
	var b strings.Builder
	for i := 0; i < len(ua) && b.Len() < maxDeviceLabel; i++ {
		c := ua[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '-', c == '_', c == '.', c == ' ':
			b.WriteByte(c)
		}
	}
	return strings.TrimSpace(b.String())
}
