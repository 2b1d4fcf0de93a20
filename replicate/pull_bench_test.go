package replicate_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync/atomic"
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

// pullTotals adds up what the timed pulls of one benchmark moved.
type pullTotals struct {
	objects, requests int
	bytes             int64
	elapsed           time.Duration
}

// pull runs one timed pull (the benchmark timer must be running) and adds
// its figures.
func (t *pullTotals) pull(b *testing.B, c *replicate.Client) {
	start := time.Now()
	res, err := c.PullWith(context.Background(), replicate.PullOptions{})
	t.elapsed += time.Since(start)
	if err != nil {
		b.Fatal(err)
	}
	t.objects += res.Objects
	t.bytes += res.Bytes
	t.requests += res.Requests
}

func (t *pullTotals) report(b *testing.B) {
	b.ReportMetric(float64(t.objects)/t.elapsed.Seconds(), "objects/s")
	b.ReportMetric(float64(t.objects)/float64(b.N), "objects/op")
	b.ReportMetric(float64(t.bytes)/float64(b.N), "payload-bytes/op")
	b.ReportMetric(float64(t.requests)/float64(b.N), "requests/op")
}

func benchFull(b *testing.B, v0, withPack bool) {
	p := benchPrimary(b, v0, withPack)
	var tot pullTotals
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		local := openRepo(b, b.TempDir())
		c := newClient(b, p.url(), local, nil)
		b.StartTimer()
		tot.pull(b, c)
		b.StopTimer()
		_ = local.Close()
		b.StartTimer()
	}
	tot.report(b)
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
// (target ≤ 15 ms end to end). The server keeps large trees it read in a
// cache (server.Server.CacheBytes), and in these modes the base tree of
// each pull is the tip the previous pull fetched, so the server finds it
// there: pack-cold is the pack pull from a server whose cache never saw
// the base (a new Server for every pull, over the same store and
// listener), as when the previous change went to other secondaries long
// ago or the server restarted.
func BenchmarkPullIncremental(b *testing.B) {
	for _, mode := range benchModes {
		b.Run(mode.name, func(b *testing.B) { benchIncremental(b, mode.v0, mode.withPack, false) })
	}
	b.Run("pack-cold", func(b *testing.B) { benchIncremental(b, false, true, true) })
}

func benchIncremental(b *testing.B, v0, withPack, cold bool) {
	p := benchPrimary(b, v0, withPack)
	url := p.url()
	var fresh func()
	if cold {
		var h atomic.Pointer[http.Handler]
		fresh = func() {
			s := &replicate.Server{SnapshotFn: func() (*repo.Repo, error) { return p.repo, nil }}
			sh := s.Handler()
			h.Store(&sh)
		}
		fresh()
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*h.Load()).ServeHTTP(w, r) }))
		b.Cleanup(ts.Close)
		url = ts.URL
	}
	local := openRepo(b, b.TempDir())
	c := newClient(b, url, local, nil)
	if _, err := c.PullWith(context.Background(), replicate.PullOptions{}); err != nil {
		b.Fatal(err)
	}
	var tot pullTotals
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if _, err := repotestSetA(p.repo, i); err != nil {
			b.Fatal(err)
		}
		if cold {
			fresh()
		}
		b.StartTimer()
		tot.pull(b, c)
	}
	tot.report(b)
	b.ReportMetric(float64(tot.elapsed.Microseconds())/1000/float64(b.N), "ms/pull")
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
