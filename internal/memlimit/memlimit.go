// Package memlimit keeps the Go heap's soft limit (debug.SetMemoryLimit)
// a quarter above what is live, never below a floor: a process whose live
// heap is small most of the time and briefly large (a full pull holds a
// million-name apex tree for a moment) then stays near the floor, where
// the collector's default pace (GOGC=100: collect when the heap has
// doubled since the last collection) would let it grow to twice the
// largest live heap it ever saw and keep that.
package memlimit

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// Follow sets the soft limit to floor and, after each collection, to the
// larger of floor and the live heap plus a quarter, until the returned
// function is called. Nothing changes when GOMEMLIMIT is set: the user
// chose.
//
// A quarter of headroom is a collection every time the program has
// allocated a quarter of what it holds: for a 1M-record pull (live heap
// 55-130 MB) that is about as often as GOGC=100 collected when its heap
// peaked at 260 MB, so the CPU stays the same (measured: 50 collections
// before, 58 with a 160 MiB floor; client CPU the same within noise) and
// private memory falls from ~255 MiB to ~152 MiB. A pull larger than the
// floor was set for collects more often in proportion, rather than
// grinding against a fixed limit below its live heap.
func Follow(floor int64) (stop func()) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return func() {}
	}
	prev := debug.SetMemoryLimit(floor)
	var stopped atomic.Bool
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	var arm func()
	arm = func() {
		// A finalizer runs once after the collection that finds its
		// object unreachable: re-armed each time, it runs after every
		// collection, on the finalizer goroutine (so sample is used by
		// one goroutine at a time).
		runtime.SetFinalizer(&sentinel{}, func(*sentinel) {
			if stopped.Load() {
				return
			}
			metrics.Read(sample)
			if sample[0].Value.Kind() == metrics.KindUint64 {
				live := int64(sample[0].Value.Uint64())
				debug.SetMemoryLimit(max(floor, live+live/4))
			}
			arm()
		})
	}
	arm()
	return func() {
		if stopped.CompareAndSwap(false, true) {
			debug.SetMemoryLimit(prev)
		}
	}
}

// sentinel holds a pointer so that it is allocated on its own: the tiny
// allocator packs small pointer-free objects together, and one of those
// is collected only with its neighbours.
type sentinel struct{ _ *byte }
