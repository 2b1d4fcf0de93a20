package server

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// gated admits h through the server's gate for expensive requests: it
// runs when a slot is free, after waiting in the queue if need be, and
// otherwise the client gets 503 with a Retry-After. The slot is taken
// before the request body is read, so waiting requests hold no decoded
// hashes.
func (s *Server) gated(h func(w http.ResponseWriter, r *http.Request)) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		g := s.getGate()
		release, retry, err := g.enter(r.Context(), s.Stats)
		if err != nil {
			if r.Context().Err() != nil {
				return // the client left while queued; nobody to answer
			}
			if s.Stats != nil {
				s.Stats.Busy.Add(1)
			}
			// Shedding load is the gate working, not a failure: one
			// warning per interval says it is happening, instead of an
			// error line per refused request.
			if n, ok := g.noteRefusal(); ok && s.Logger != nil {
				s.Logger.Warn("replicate server: busy, answering walk, pack and batch requests with 503",
					"refused", n, "running", g.running.Load(), "queued", g.queued.Load())
			}
			w.Header().Set("Retry-After", strconv.Itoa(int((retry+time.Second-1)/time.Second)))
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		defer release()
		h(w, r)
	}
}

func (s *Server) getGate() *gate {
	s.gateOnce.Do(func() {
		queue := orDefault(s.MaxQueued, defaultMaxQueued)
		if s.MaxQueued < 0 {
			queue = 0
		}
		s.gate = newGate(orDefault(s.MaxConcurrent, defaultMaxConcurrent), queue, orDefault(s.QueueWait, defaultQueueWait))
	})
	return s.gate
}

// gate is a counting semaphore with a bounded, time-limited queue. Waiters
// are served in arrival order (a channel's blocked senders are queued).
type gate struct {
	slots   chan struct{}
	queued  atomic.Int64
	running atomic.Int64
	max     int64
	wait    time.Duration
	// held is a moving average of how long a slot is held (ns), to tell
	// refused clients when a retry is likely to get in.
	held atomic.Int64
	// refused counts refusals since the last warning, sent at most once
	// per busyLogInterval (lastWarn, unix ns).
	refused  atomic.Int64
	lastWarn atomic.Int64
}

const busyLogInterval = 10 * time.Second

// noteRefusal counts a refusal and reports whether it is time to warn, with
// the refusals since the last warning.
func (g *gate) noteRefusal() (int64, bool) {
	g.refused.Add(1)
	now := time.Now().UnixNano()
	last := g.lastWarn.Load()
	if now-last < int64(busyLogInterval) || !g.lastWarn.CompareAndSwap(last, now) {
		return 0, false
	}
	return g.refused.Swap(0), true
}

func newGate(slots, queue int, wait time.Duration) *gate {
	return &gate{slots: make(chan struct{}, slots), max: int64(queue), wait: wait}
}

var (
	errQueueFull = errors.New("server busy: too many walk, pack and batch requests queued; retry later")
	errQueueWait = errors.New("server busy: no slot for this walk, pack or batch request came free in time; retry later")
)

// enter waits for a slot. It returns the slot's release, or an error
// (queue full, waited too long, or ctx ended) and a suggested retry delay.
func (g *gate) enter(ctx context.Context, st *ServerStats) (release func(), retry time.Duration, err error) {
	select {
	case g.slots <- struct{}{}:
		return g.admitted(st), 0, nil
	default:
	}
	if g.queued.Add(1) > g.max {
		g.queued.Add(-1)
		return nil, g.retryAfter(), errQueueFull
	}
	if st != nil {
		st.Queued.Add(1)
	}
	t := time.NewTimer(g.wait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		g.queued.Add(-1)
		return g.admitted(st), 0, nil
	case <-t.C:
		g.queued.Add(-1)
		return nil, g.retryAfter(), errQueueWait
	case <-ctx.Done():
		g.queued.Add(-1)
		return nil, 0, ctx.Err()
	}
}

func (g *gate) admitted(st *ServerStats) func() {
	n := g.running.Add(1)
	if st != nil {
		for {
			peak := st.PeakRunning.Load()
			if n <= peak || st.PeakRunning.CompareAndSwap(peak, n) {
				break
			}
		}
	}
	start := time.Now()
	return func() {
		d := int64(time.Since(start))
		// An exponential moving average (1/8 weight) is enough for a hint.
		for {
			old := g.held.Load()
			next := d
			if old > 0 {
				next = old + (d-old)/8
			}
			if g.held.CompareAndSwap(old, next) {
				break
			}
		}
		g.running.Add(-1)
		<-g.slots
	}
}

// retryAfter estimates when the queue will have room: the time the
// requests now queued take to drain, between 1 and 30 seconds, spread by
// up to half again so refused clients do not all come back at once.
func (g *gate) retryAfter() time.Duration {
	d := time.Duration(g.held.Load()) * time.Duration(g.queued.Load()+1) / time.Duration(cap(g.slots))
	d = min(max(d, time.Second), 30*time.Second)
	return d + rand.N(d/2+1)
}
