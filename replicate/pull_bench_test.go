package replicate_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// benchRecords is the flat zone size (DESIGN §9: 100,000 A records);
// ZONEGIT_BENCH_RECORDS overrides it.
func benchRecords() int {
	if s := os.Getenv("ZONEGIT_BENCH_RECORDS"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			return n
		}
	}
	return 100000
}

// benchModes are the primaries a pull is measured against: every
// extension (pack), pack hidden (walk + batch), plain v0.
var benchModes = []struct {
	name         string
	v0, withPack bool
}{{"pack", false, true}, {"batch", false, false}, {"v0only", true, false}}

func benchPrimary(b *testing.B, v0, withPack bool) *primary {
	b.Helper()
	if !v0 && !withPack {
		withoutPack.Store(b, true)
		b.Cleanup(func() { withoutPack.Delete(b) })
	}
	p := newPrimary(b, v0, nil)
	mustSynthetic(b, p.repo, "bench.test.", "main", benchRecords())
	return p
}

func reportPull(b *testing.B, objects int, bytes int64, requests int, elapsed time.Duration) {
	b.ReportMetric(float64(objects)/elapsed.Seconds(), "objects/s")
	b.ReportMetric(float64(objects)/float64(b.N), "objects/op")
	b.ReportMetric(float64(bytes)/float64(b.N), "payload-bytes/op")
	b.ReportMetric(float64(requests)/float64(b.N), "requests/op")
}

func benchFull(b *testing.B, v0, withPack bool) {
	p := benchPrimary(b, v0, withPack)
	var objects, requests int
	var bytes int64
	var elapsed time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		local := openRepo(b, b.TempDir())
		c := newClient(b, p.url(), local, nil)
		b.StartTimer()
		start := time.Now()
		res, err := c.PullWith(context.Background(), replicate.PullOptions{})
		elapsed += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		objects += res.Objects
		bytes += res.Bytes
		requests += res.Requests
		b.StopTimer()
		_ = local.Close()
		b.StartTimer()
	}
	reportPull(b, objects, bytes, requests, elapsed)
}

// BenchmarkPullFull: a full pull of a flat zone over loopback, with the
// server's extensions (target ≥ 50,000 objects/s; pack, and walk + batch)
// and against a v0-only server (target ≥ 10,000 objects/s).
func BenchmarkPullFull(b *testing.B) {
	for _, m := range benchModes {
		b.Run(m.name, func(b *testing.B) { benchFull(b, m.v0, m.withPack) })
	}
}

// BenchmarkPullIncremental: one changed record on the primary, then a pull
// (target ≤ 20 ms end to end).
func BenchmarkPullIncremental(b *testing.B) {
	for _, mode := range benchModes {
		b.Run(mode.name, func(b *testing.B) {
			p := benchPrimary(b, mode.v0, mode.withPack)
			local := openRepo(b, b.TempDir())
			c := newClient(b, p.url(), local, nil)
			if _, err := c.PullWith(context.Background(), replicate.PullOptions{}); err != nil {
				b.Fatal(err)
			}
			var objects, requests int
			var bytes int64
			var elapsed time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				if _, err := repotestSetA(p.repo, i); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start := time.Now()
				res, err := c.PullWith(context.Background(), replicate.PullOptions{})
				elapsed += time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
				objects += res.Objects
				bytes += res.Bytes
				requests += res.Requests
			}
			reportPull(b, objects, bytes, requests, elapsed)
			b.ReportMetric(float64(elapsed.Microseconds())/1000/float64(b.N), "ms/pull")
		})
	}
}

func repotestSetA(r *repo.Repo, i int) (repo.Hash, error) {
	return setA(r, "bench.test.", "main", "h"+strconv.Itoa(i%1000), byte(i))
}

// TestBuildBenchPrimary writes a synthetic flat zone of
// ZONEGIT_BENCH_RECORDS records into the directory named by
// ZONEGIT_BUILD_PRIMARY, for measuring a pull in a separate process (the
// RSS target: `zonegit-replicate serve` on it, then `zonegit-replicate pull`
// under /usr/bin/time -v). Skipped unless the variable is set.
func TestBuildBenchPrimary(t *testing.T) {
	dir := os.Getenv("ZONEGIT_BUILD_PRIMARY")
	if dir == "" {
		t.Skip("set ZONEGIT_BUILD_PRIMARY to build a benchmark primary")
	}
	r, err := repo.Open(dir, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	mustSynthetic(t, r, "bench.test.", "main", benchRecords())
}
