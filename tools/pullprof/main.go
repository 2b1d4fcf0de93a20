// Command pullprof profiles the client side of one pull: it pulls from a
// running primary (`zonegit-replicate serve`) into a local repository in
// this process, as `zonegit-replicate pull` does (the same soft heap limit,
// following the live heap, unless GOMEMLIMIT is set), and writes Go
// profiles of it, which the
// CLI does not:
//
//	go run ./tools/pullprof -primary http://127.0.0.1:9354 -repo /tmp/replica \
//	    -cpuprofile cpu.prof -heapprofile heap.prof
//
// -heapprofile is written when the live heap after a collection is at its
// largest (checked every 100 ms), so it shows what the peak holds, not what
// is left at the end. The phases (transfer, closure check) are told apart by
// a line on stderr with the time and the live heap every second.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"runtime/trace"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/internal/memlimit"
	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/repo"
)

func main() {
	primary := flag.String("primary", "", "primary URL (required)")
	dir := flag.String("repo", "", "local repository directory (required)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the pull here")
	heapProfile := flag.String("heapprofile", "", "write a heap profile taken at the largest live heap here")
	traceOut := flag.String("trace", "", "write an execution trace of the pull here (go tool trace)")
	flag.Parse()
	if *primary == "" || *dir == "" {
		fmt.Fprintln(os.Stderr, "pullprof: -primary and -repo are required")
		os.Exit(2)
	}
	defer memlimit.Follow(160 << 20)() // as cmd/zonegit-replicate's pull (pullMemoryFloor)
	if err := run(*primary, *dir, *cpuProfile, *heapProfile, *traceOut); err != nil {
		fmt.Fprintln(os.Stderr, "pullprof:", err)
		os.Exit(1)
	}
}

func run(primary, dir, cpuProfile, heapProfile, traceOut string) error {
	start := time.Now()
	local, err := repo.Open(dir, repo.Options{Bulk: true}) // as the CLI opens it
	if err != nil {
		return err
	}
	opened := time.Since(start)
	defer local.Close()
	c, err := replicate.NewClientWithOptions(local, replicate.ClientOptions{PrimaryURL: primary})
	if err != nil {
		return err
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if traceOut != "" {
		f, err := os.Create(traceOut)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := trace.Start(f); err != nil {
			return err
		}
		defer trace.Stop()
	}
	done := make(chan struct{})
	watched := make(chan error, 1)
	go func() { watched <- watchHeap(heapProfile, start, done) }()
	res, err := c.PullWith(context.Background(), replicate.PullOptions{})
	close(done)
	if werr := <-watched; werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		return err
	}
	closing := time.Now()
	if err := local.Close(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "pulled %d objects in %s (with open and close: %s; open %s, close %s)\n", res.Objects, res.Duration.Round(time.Millisecond),
		time.Since(start).Round(time.Millisecond), opened.Round(time.Millisecond), time.Since(closing).Round(time.Millisecond))
	return nil
}

// watchHeap reports the live heap every second and, with a path, writes a
// heap profile whenever the live heap (as of the last collection) reaches
// a new maximum, 10% above the last one written.
func watchHeap(path string, start time.Time, done <-chan struct{}) error {
	liveSample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	var last, peak uint64
	var lastGC uint32
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-done:
			fmt.Fprintf(os.Stderr, "peak live heap %d MiB\n", peak>>20)
			return nil
		case <-tick.C:
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.NumGC == lastGC {
			continue
		}
		lastGC = ms.NumGC
		// What the last collection found live (HeapAlloc also counts
		// what was allocated since, up to the next collection's goal).
		metrics.Read(liveSample)
		live := liveSample[0].Value.Uint64()
		if n%10 == 0 {
			fmt.Fprintf(os.Stderr, "%6.1fs heap %4d MiB, sys %4d MiB, %d GCs\n", time.Since(start).Seconds(), live>>20, ms.Sys>>20, ms.NumGC)
		}
		if live > peak {
			peak = live
		}
		if path == "" || live < last+last/10 {
			continue
		}
		last = live
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
}
