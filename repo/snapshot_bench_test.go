package repo_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/repo"
	"github.com/zonegit/terraform-provider-zonegit/repo/repotest"
)

// BenchmarkReadOnlyOpen measures what a read costs before the first
// lookup: taking the private snapshot, opening it and closing it again,
// on a closed 100,000-record repository.
//
//	attached:        hard links (plan, fsck)
//	detached:        full copy (serve's first snapshot)
//	detached-reuse:  copy with every table linked from the previous
//	                 snapshot (serve after a writer changed nothing but
//	                 the small files)
func BenchmarkReadOnlyOpen(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "repo")
	w, err := repo.Open(dir, repo.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := repotest.Synthetic(w, repotest.SyntheticOptions{Zone: "example.com.", N: 100_000, Fanout: 300}); err != nil {
		b.Fatal(err)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	var size int64
	ents, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range ents {
		if fi, err := e.Info(); err == nil {
			size += fi.Size()
		}
	}
	open := func(b *testing.B, opts repo.Options) *repo.Repo {
		r, err := repo.Open(dir, opts)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.Branch("example.com.", "main"); err != nil {
			b.Fatal(err)
		}
		return r
	}
	for _, c := range []struct {
		name  string
		opts  repo.Options
		reuse bool
	}{
		{"attached", repo.Options{ReadOnly: true}, false},
		{"detached", repo.Options{ReadOnly: true, Detached: true}, false},
		{"detached-reuse", repo.Options{ReadOnly: true, Detached: true}, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			var prev *repo.Repo
			if c.reuse {
				prev = open(b, c.opts)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				opts := c.opts
				opts.Reuse = prev
				r := open(b, opts)
				if c.reuse {
					prev.Close()
					prev = r
					continue
				}
				if err := r.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(size)/(1<<20), "repo-MiB")
			if prev != nil {
				prev.Close()
			}
		})
	}
}
