package replicate

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/replicate/wire"
	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// countingReader counts the bytes read from r.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// settled waits until f stops changing and returns its value.
func settled(f func() int64) int64 {
	last := f()
	for {
		time.Sleep(50 * time.Millisecond)
		v := f()
		if v == last {
			return v
		}
		last = v
	}
}

// TestPackReaderBounded: a pack reader whose receiver takes nothing reads
// ahead at most its budget (or one object larger than that), plus the
// frame it waits to hand over and the frame reader's buffer; told to stop,
// it ends, leaving no goroutine behind.
func TestPackReaderBounded(t *testing.T) {
	for _, size := range []int{1000, 300 << 10, readAheadBytes + 1<<20} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			var stream []byte
			total := 0
			for i := 0; total < 3*readAheadBytes+3*size; i++ {
				payload := bytes.Repeat([]byte{byte(i), byte(i >> 8)}, size/2)
				h := repo.HashObject(repo.KindBlob, payload)
				stream = append(stream, h.String()+" blob "+strconv.Itoa(len(payload))+"\n"...)
				stream = append(stream, payload...)
				total += len(payload)
			}
			before := runtime.NumGoroutine()
			cr := &countingReader{r: bytes.NewReader(stream)}
			chunks := make(chan packChunk, packChunksAhead)
			ahead := newReadAhead(readAheadBytes)
			done := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				readPack((&received{}).keyer(), wire.NewFrameReader(cr, maxObjectBytes), chunks, ahead, done)
			}()
			read := settled(cr.n.Load)
			// Held: the budget, or one object past it; then the frame
			// waiting for room and the frame reader's 256 KiB buffer.
			limit := int64(max(readAheadBytes, size+frameOverhead) + size + 128 + 256<<10)
			if read > limit {
				t.Errorf("the reader read %d bytes ahead of a receiver that took nothing, want at most %d", read, limit)
			}
			if read >= int64(len(stream)) {
				t.Fatalf("the reader read the whole %d-byte stream: nothing held it back", len(stream))
			}
			// The receiver takes one chunk: the reader goes on.
			c := <-chunks
			ahead.give(c.cost)
			// (Waited for, not sampled: on a loaded machine the reader
			// may take a while to be scheduled.)
			more := cr.n.Load()
			for deadline := time.Now().Add(10 * time.Second); more <= read && time.Now().Before(deadline); more = cr.n.Load() {
				time.Sleep(5 * time.Millisecond)
			}
			if more <= read {
				t.Errorf("the reader did not go on after a chunk was taken (%d bytes read, then %d)", read, more)
			}
			close(done)
			ahead.close()
			wg.Wait()
			if n := settledGoroutines(before); n > before {
				t.Errorf("%d goroutines after the reader stopped, %d before", n, before)
			}
		})
	}
}

// settledGoroutines waits a little for goroutines to end, down to want.
func settledGoroutines(want int) int {
	n := runtime.NumGoroutine()
	for i := 0; i < 50 && n > want; i++ {
		time.Sleep(10 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	return n
}

// TestPackReaderOrder: frames come out in stream order, each hashed and
// decoded, and the stream's end (or error) comes after the last frame.
func TestPackReaderOrder(t *testing.T) {
	type frame struct {
		h            repo.Hash
		kind         repo.Kind
		payload      []byte
		forged, junk bool
	}
	var seed []frame
	fr := wire.NewFrameReader(bytes.NewReader(packSeed(t)), maxObjectBytes)
	for {
		h, kind, payload, err := fr.Next()
		if err != nil {
			break
		}
		seed = append(seed, frame{h: h, kind: kind, payload: bytes.Clone(payload)})
	}
	junk := []byte("junk")
	seed = append(seed, frame{h: repo.HashObject(repo.KindBlob, junk), kind: repo.KindBlob, payload: junk, junk: true})
	var stream []byte
	var want []frame
	for i := 0; i < 3*chunkFrames+7; i++ {
		f := seed[i%len(seed)]
		if i%7 == 0 {
			f.h[0] ^= 1
			f.forged = true
		}
		stream = append(stream, f.h.String()+" "+string(f.kind)+" "+strconv.Itoa(len(f.payload))+"\n"...)
		stream = append(stream, f.payload...)
		want = append(want, f)
	}
	stream = append(stream, "not a frame\n"...)
	chunks := make(chan packChunk, packChunksAhead)
	ahead := newReadAhead(readAheadBytes)
	done := make(chan struct{})
	go readPack((&received{}).keyer(), wire.NewFrameReader(bytes.NewReader(stream), maxObjectBytes), chunks, ahead, done)
	defer close(done)
	n := 0
	for {
		c := <-chunks
		for _, f := range c.frames {
			if n >= len(want) {
				t.Fatalf("frame %d (%s) after the %d frames sent", n, f.h.Short(), len(want))
			}
			w := want[n]
			switch {
			case f.h != w.h || f.kind != w.kind:
				t.Errorf("frame %d is %s (%s), want %s (%s)", n, f.h.Short(), f.kind, w.h.Short(), w.kind)
			case w.forged:
				if !errors.Is(f.verr, repo.ErrHashMismatch) {
					t.Errorf("frame %d: a forged object: verification error %v", n, f.verr)
				}
			case f.verr != nil || f.obj.Hash() != w.h || !bytes.Equal(f.obj.Payload(), w.payload):
				t.Errorf("frame %d: verification error %v, verified as %s", n, f.verr, f.obj.Hash().Short())
			case (f.decodeErr != nil) != w.junk:
				t.Errorf("frame %d: decode error %v", n, f.decodeErr)
			}
			n++
		}
		ahead.give(c.cost)
		if c.err != nil {
			if n != len(want) || errors.Is(c.err, io.EOF) {
				t.Fatalf("the stream ended (%v) after %d frames, want an error after %d", c.err, n, len(want))
			}
			return
		}
	}
}
