package repo

import (
	"fmt"
	"strings"
	"sync"

	"github.com/dgraph-io/badger/v4"
)

// flushGiveUp is how many failed memtable flushes in a row Close sits
// through (Badger retries once a second) before it gives up on the flush.
var flushGiveUp = 5

// flushWatch stands between Badger and the caller's logger to see Badger's
// memtable flushes fail. Badger retries a failed flush forever, and Close
// waits for it: a writer whose directory was deleted, or whose disk went
// read-only or bad, would never finish closing, and a daemon told to stop
// would never stop. Close gives up after flushGiveUp failures in a row and
// says why; what the memtable held is still in its write-ahead log (.mem
// file) and is replayed by the next open, as after a kill.
type flushWatch struct {
	next badger.Logger // nil: discard

	mu       sync.Mutex
	failures int    // in a row; a flush that works is not logged, so Close resets it
	last     string // the last failure, for the error
	notify   chan struct{}
}

func newFlushWatch(next badger.Logger) *flushWatch {
	return &flushWatch{next: next, notify: make(chan struct{}, 1)}
}

func (w *flushWatch) Errorf(format string, args ...any) {
	if strings.HasPrefix(format, "error flushing memtable") {
		w.mu.Lock()
		w.failures++
		w.last = fmt.Sprintf(format, args...)
		w.mu.Unlock()
		select {
		case w.notify <- struct{}{}:
		default:
		}
	}
	if w.next != nil {
		w.next.Errorf(format, args...)
	}
}

func (w *flushWatch) Warningf(format string, args ...any) {
	if w.next != nil {
		w.next.Warningf(format, args...)
	}
}

func (w *flushWatch) Infof(format string, args ...any) {
	if w.next != nil {
		w.next.Infof(format, args...)
	}
}

func (w *flushWatch) Debugf(format string, args ...any) {
	if w.next != nil {
		w.next.Debugf(format, args...)
	}
}

// closeDB closes db, or gives up once its memtable flush has failed
// flushGiveUp times in a row since the close began (Badger's goroutines are
// then left retrying: the process should exit).
func (w *flushWatch) closeDB(path string, closeFn func() error) error {
	w.mu.Lock()
	w.failures = 0
	w.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- closeFn() }()
	for {
		select {
		case err := <-done:
			return err
		case <-w.notify:
			w.mu.Lock()
			n, last := w.failures, w.last
			w.mu.Unlock()
			if n >= flushGiveUp {
				return fmt.Errorf("close repository %s: gave up after %d failed attempts to write its memtable "+
					"to disk (%s); the writes since the last table are in its write-ahead log and the next "+
					"open replays them; check the directory and the disk", path, n, last)
			}
		}
	}
}
