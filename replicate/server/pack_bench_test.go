package server

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/replicate/wire"
	"github.com/zonegit/terraform-provider-zonegit/repo"
	"github.com/zonegit/terraform-provider-zonegit/repo/repotest"
)

// BenchmarkPackFull measures the primary's side of a full pull: one pack
// response of a flat zone (2N+4 objects), served from a read-only handle
// as zonegit-replicate serve serves it, read by a client that only counts
// bytes. ZONEGIT_BENCH_RECORDS sets N (default 100,000).
func BenchmarkPackFull(b *testing.B) {
	n := 100000
	if s := os.Getenv("ZONEGIT_BENCH_RECORDS"); s != "" {
		if v, err := strconv.Atoi(s); err == nil && v > 0 {
			n = v
		}
	}
	dir := b.TempDir()
	w, err := repo.Open(dir, repo.Options{})
	if err != nil {
		b.Fatal(err)
	}
	tip, err := repotest.Synthetic(w, repotest.SyntheticOptions{Zone: "bench.test.", N: n})
	if err != nil {
		b.Fatal(err)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	r, err := repo.Open(dir, repo.Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	ts := httptest.NewServer((&Server{SnapshotFn: func() (*repo.Repo, error) { return r, nil }}).Handler())
	b.Cleanup(ts.Close)
	body := fmt.Sprintf(`{"roots":[%q]}`, tip.String())
	want := strconv.Itoa(2*n + 4)
	var bytes int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := http.Post(ts.URL+wire.PackPath, "application/json", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		m, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			b.Fatal(err)
		}
		if got := resp.Trailer.Get(wire.ObjectCountTrailer); got != want {
			b.Fatalf("status %d, %s objects, want %s", resp.StatusCode, got, want)
		}
		bytes += m
	}
	b.ReportMetric(float64(2*n+4), "objects/op")
	b.ReportMetric(float64(bytes)/float64(b.N), "stream-B/op")
}
