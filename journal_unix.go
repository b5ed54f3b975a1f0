//go:build unix

package gormsession

import (
	"os"
	"syscall"
)

// unlockFile releases the lock bbolt took on f. Closing f alone would not,
// while bbolt's map of it is still in place.
func unlockFile(f *os.File) {
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}

// lockShared reports whether a shared lock on f can be had now, and
// leaves it held until f is closed: no other Manager or process holds
// the journal.
func lockShared(f *os.File) bool {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB) == nil
}
