package repo

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// writeFlatZone writes a zone with n A records, each at its own name
// directly below the apex (plus SOA and NS), and returns its path.
func writeFlatZone(tb testing.TB, dir string, n int) string {
	return writeZone(tb, dir, "flat", func(w *bufio.Writer) {
		for i := 0; i < n; i++ {
			fmt.Fprintf(w, "h%d IN A 10.%d.%d.%d\n", i, i>>16&255, i>>8&255, i&255)
		}
	})
}

// writeNestedZone writes n A records spread over a three-level hierarchy
// below the apex (10 x 100 x n/1000 names), so most trees are interior.
func writeNestedZone(tb testing.TB, dir string, n int) string {
	return writeZone(tb, dir, "nested", func(w *bufio.Writer) {
		for i := 0; i < n; i++ {
			fmt.Fprintf(w, "h%d.s%d.r%d IN A 10.%d.%d.%d\n", i/1000, i/10%100, i%10, i>>16&255, i>>8&255, i&255)
		}
	})
}

func writeZone(tb testing.TB, dir, name string, body func(*bufio.Writer)) string {
	tb.Helper()
	p := filepath.Join(dir, name+".zone")
	f, err := os.Create(p)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if _, err := w.WriteString("$ORIGIN bench.test.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ IN NS ns1\n"); err != nil {
		tb.Fatal(err)
	}
	body(w)
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	return p
}

// peakRSSMiB is the process's peak resident set (VmHWM). It is process-wide
// and never goes down, so in a benchmark run it is the peak of everything
// run so far; run one sub-benchmark alone for an honest figure.
func peakRSSMiB() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				return 0
			}
			return kb / 1024
		}
	}
	return 0
}

// BenchmarkImport imports generated zones into an on-disk repository.
// flat-1M is skipped with -short; run it alone for its RSS:
//
//	go test -run '^$' -bench 'Import/flat-1M' ./repo/
func BenchmarkImport(b *testing.B) {
	cases := []struct {
		name  string
		n     int
		write func(testing.TB, string, int) string
		long  bool
	}{
		{"flat-10k", 10_000, writeFlatZone, false},
		{"flat-100k", 100_000, writeFlatZone, false},
		{"nested-100k", 100_000, writeNestedZone, false},
		{"flat-1M", 1_000_000, writeFlatZone, true},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			if c.long && testing.Short() {
				b.Skip("1M records: skipped with -short")
			}
			file := c.write(b, b.TempDir(), c.n)
			rrsets := 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				r, err := Open(b.TempDir(), Options{})
				if err != nil {
					b.Fatal(err)
				}
				f, err := os.Open(file)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				res, err := r.Import(context.Background(), ImportOptions{Zone: "bench.test.", Source: f, SourceName: c.name})
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				rrsets = res.RRsets
				f.Close()
				if err := r.Close(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.StopTimer()
			b.ReportMetric(float64(rrsets)*float64(b.N)/b.Elapsed().Seconds(), "rrsets/s")
			b.ReportMetric(peakRSSMiB(), "peakRSS-MiB")
		})
	}
}
