package testdb

import (
	"flag"
	"runtime"
	"strconv"
)

// RaiseParallel sets the test binary's -test.parallel to four times
// GOMAXPROCS (at least 8) unless the command line set it. Call it from
// TestMain, before m.Run. The default, GOMAXPROCS, suits tests that keep
// the CPU busy; these mostly wait, on a database's commit or on a poll
// interval, so more of them at once finish sooner on a small machine.
func RaiseParallel() {
	if !flag.Parsed() {
		flag.Parse()
	}
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		_ = flag.Set("test.parallel", strconv.Itoa(max(8, 4*runtime.GOMAXPROCS(0))))
	}
}
