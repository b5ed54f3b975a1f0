//go:build !unix

package gormsession

import "os"

// unlockFile does nothing where closing f releases bbolt's lock.
func unlockFile(*os.File) {}

// lockShared reports true: bbolt's own lock decides.
func lockShared(*os.File) bool { return true }
