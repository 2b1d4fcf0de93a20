package memlimit

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// TestFollow: the limit starts at the floor, rises to a quarter above a
// live heap larger than the floor after a collection, comes back to the
// floor once that heap is garbage, and is restored by stop.
func TestFollow(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	before := debug.SetMemoryLimit(-1)
	const floor = 16 << 20
	stop := Follow(floor)
	if got := debug.SetMemoryLimit(-1); got != floor {
		t.Fatalf("limit %d after Follow, want the floor %d", got, floor)
	}
	waitLimit := func(ok func(int64) bool, what string) int64 {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			runtime.GC()
			if got := debug.SetMemoryLimit(-1); ok(got) {
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("limit %d: never %s", debug.SetMemoryLimit(-1), what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	held := make([][]byte, 64)
	for i := range held {
		held[i] = make([]byte, 1<<20)
	}
	got := waitLimit(func(l int64) bool { return l >= 64<<20+16<<20 }, "a quarter above a 64 MiB live heap")
	if got > 64<<20*2 {
		t.Fatalf("limit %d for a ~64 MiB live heap: more than a quarter above it", got)
	}
	runtime.KeepAlive(held) // its last use: garbage from here on
	waitLimit(func(l int64) bool { return l == floor }, "back at the floor")
	stop()
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Fatalf("limit %d after stop, want %d as before", got, before)
	}
	// Collections after stop leave the limit alone.
	runtime.GC()
	runtime.GC()
	time.Sleep(20 * time.Millisecond)
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Fatalf("limit %d after stop and collections, want %d", got, before)
	}
}

// TestFollowRespectsGOMEMLIMIT: a limit the user set is left alone.
func TestFollowRespectsGOMEMLIMIT(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "1GiB")
	before := debug.SetMemoryLimit(-1)
	stop := Follow(16 << 20)
	defer stop()
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Fatalf("limit %d with GOMEMLIMIT set, want %d untouched", got, before)
	}
}
