package server

import (
	"fmt"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/replicate/walk"
	"github.com/zonegit/terraform-provider-zonegit/repo"
	"github.com/zonegit/terraform-provider-zonegit/repo/repotest"
)

// BenchmarkWalk measures the server walk of an incremental pull (one
// record changed, the client holding the previous commit) by zone size,
// zone shape and length of history. Work must not grow with history; with
// a nested zone it must not grow with size either. In a flat zone the apex
// tree holds one entry per name, so its byte scan grows with size while
// the objects visited stay the same (see the note in package walk).
func BenchmarkWalk(b *testing.B) {
	for _, c := range []struct {
		records, fanout, history int
	}{
		{10000, 0, 1}, {100000, 0, 1}, {1000000, 0, 1},
		{10000, 1000, 1}, {100000, 1000, 1}, {1000000, 1000, 1},
		{100000, 0, 20}, {100000, 0, 100},
		{1000000, 1000, 20}, {1000000, 1000, 100},
	} {
		shape := "flat"
		if c.fanout > 0 {
			shape = fmt.Sprintf("fanout%d", c.fanout)
		}
		b.Run(fmt.Sprintf("records=%d/%s/history=%d", c.records, shape, c.history), func(b *testing.B) {
			r, root, known := incrementalRepo(b, c.records, c.fanout, c.history)
			for _, cached := range []bool{false, true} {
				name := "store"
				if cached {
					// As the server reads: large trees come from its cache
					// once a first secondary pulled the change.
					name = "server-cache"
				}
				b.Run(name, func(b *testing.B) { benchWalk(b, r, root, known, cached) })
			}
		})
	}
}

func benchWalk(b *testing.B, r *repo.Repo, root, known repo.Hash, cached bool) {
	roots, knowns := []repo.Hash{root}, []repo.Hash{known}
	srv := &Server{}
	if !cached {
		srv.CacheBytes = -1
	}
	var st walk.Stats
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		err := r.View(func(rd repo.Reader) error {
			var err error
			st, err = walk.Missing(srv.reader(rd), roots, knowns, walk.Options{}, func(repo.Hash, repo.Kind, []byte) error { return nil })
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(st.Visited()), "visited/op")
	b.ReportMetric(float64(st.Missing), "missing/op")
	b.ReportMetric(float64(st.Bytes), "read-B/op")
}

// incrementalRepo builds (on disk, as served) a zone of records names and
// history commits; the last commit changes one record. It returns the tip
// and its parent.
func incrementalRepo(b *testing.B, records, fanout, history int) (*repo.Repo, repo.Hash, repo.Hash) {
	b.Helper()
	dir := b.TempDir()
	r, err := repo.Open(dir, repo.Options{})
	if err != nil {
		b.Fatal(err)
	}
	const zone = "example.com."
	tip, err := repotest.Synthetic(r, repotest.SyntheticOptions{Zone: zone, N: records, Fanout: fanout})
	if err != nil {
		b.Fatal(err)
	}
	prev := tip
	for i := 1; i < history+1; i++ {
		n := (i * 7919) % records
		path := []string{fmt.Sprintf("h%d", n)}
		if fanout > 0 {
			path = []string{fmt.Sprintf("g%d", n/fanout), path[0]}
		}
		prev = tip
		if tip, err = repotest.SetA(r, zone, "main", path, 60, [4]byte{192, 0, 2, byte(i)}); err != nil {
			b.Fatal(err)
		}
	}
	// Serve it as serve does: closed by the writer, re-opened read-only,
	// so no compaction left over from the build competes with the walk.
	if err := r.Close(); err != nil {
		b.Fatal(err)
	}
	if r, err = repo.Open(dir, repo.Options{ReadOnly: true}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	return r, tip, prev
}
