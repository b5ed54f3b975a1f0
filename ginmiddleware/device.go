package ginmiddleware

import "github.com/gormsession/gormsession"

// DeviceLabel returns a short readable label for a User-Agent header, such
// as "Firefox on Linux"; see gormsession.DeviceLabel. Login uses it when
// Attributes.Device is empty.
//
// Deprecated: use gormsession.DeviceLabel, which net/http applications can
// import without Gin.
func DeviceLabel(userAgent string) string { return gormsession.DeviceLabel(userAgent) }
