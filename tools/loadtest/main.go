// Command loadtest puts one `zonegit-replicate serve` under the load of many
// secondaries at once and reports what it cost (run it with `make
// loadtest`; it is not part of `make test`):
//
//   - builds the command, and writes a flat synthetic zone (20,000 A
//     records by default) into a fresh primary repository;
//   - starts `serve` on loopback with its default limits;
//   - at the same time runs 32 full pulls (the real command, each into a
//     fresh replica) and 500 full walk requests (POST /v0/objects/walk
//     with no known objects, the most a client can ask of a walk);
//   - checks every answer: each pull exits 0 with the primary's tip, each
//     walk lists the whole zone. A walk refused with 503 is retried after
//     its Retry-After, as our client does; such refusals are counted, not
//     failures;
//   - reports the server's peak RSS (VmHWM from /proc/<pid>/status) and
//     p50/p99 latencies.
//
// It fails only on errors (a failed pull or walk, a wrong answer, a server
// that died), never on time or memory figures: those are for people to
// read. -deadline only guards against a hang; it is far above any run's
// time (about a minute on 2 idle cores).
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/repo"
	"github.com/zonegit/terraform-provider-zonegit/repo/repotest"
)

type config struct {
	records, pulls, walks int
	deadline              time.Duration
	keep                  bool
	serveArgs             string
}

func main() {
	var cfg config
	flag.IntVar(&cfg.records, "records", 20000, "A records in the synthetic (flat) zone")
	flag.IntVar(&cfg.pulls, "pulls", 32, "concurrent full pulls, each into a fresh replica")
	flag.IntVar(&cfg.walks, "walks", 500, "concurrent full walk requests")
	flag.DurationVar(&cfg.deadline, "deadline", 15*time.Minute, "guard against a hang: a run still going after this fails")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the work directory (printed)")
	flag.StringVar(&cfg.serveArgs, "serve-args", "", "extra flags for serve, space separated (e.g. \"--max-concurrent 8\")")
	flag.Parse()
	if err := run(cfg); err != nil {
		fmt.Fprintf(os.Stderr, "loadtest: FAILED: %v\n", err)
		os.Exit(1)
	}
}

func run(cfg config) error {
	work, err := os.MkdirTemp("", "zonegit-loadtest-")
	if err != nil {
		return err
	}
	if cfg.keep {
		fmt.Printf("work directory %s (kept)\n", work)
	} else {
		defer os.RemoveAll(work)
	}
	ctx, cancel := context.WithTimeoutCause(context.Background(), cfg.deadline,
		fmt.Errorf("the run did not finish within -deadline %s", cfg.deadline))
	defer cancel()

	bin := filepath.Join(work, "zonegit-replicate")
	start := time.Now()
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/zonegit-replicate")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build zonegit-replicate: %w", err)
	}
	fmt.Printf("built zonegit-replicate in %s\n", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	primaryDir := filepath.Join(work, "primary")
	tip, err := makeZone(primaryDir, cfg.records)
	if err != nil {
		return err
	}
	fmt.Printf("primary: flat zone load.example. of %d A records, tip %s, written in %s\n",
		cfg.records, tip.Short(), time.Since(start).Round(time.Millisecond))

	srv, err := startServe(ctx, bin, primaryDir, strings.Fields(cfg.serveArgs))
	if err != nil {
		return err
	}
	defer srv.stop()
	fmt.Printf("serve pid %d on %s\n", srv.cmd.Process.Pid, srv.url)

	// Both loads at once: the server sees 32 packs and 500 walks together.
	start = time.Now()
	var wg sync.WaitGroup
	var pulls []pullResult
	var walks *walkResults
	wg.Add(2)
	go func() { defer wg.Done(); pulls = runPulls(ctx, bin, srv.url, work, cfg.pulls) }()
	go func() { defer wg.Done(); walks = runWalks(ctx, srv.url, tip, cfg.walks) }()
	wg.Wait()
	elapsed := time.Since(start)
	hwm, hwmErr := procStatusKB(srv.cmd.Process.Pid, "VmHWM")
	serverAlive := srv.cmd.ProcessState == nil && srv.cmd.Process.Signal(syscall.Signal(0)) == nil

	var failures []string
	// Pulls.
	var pullDur []time.Duration
	var pullReqs, pullObjects int
	for i, p := range pulls {
		pullDur = append(pullDur, p.took)
		pullReqs += p.requests
		switch {
		case p.err != nil:
			failures = append(failures, fmt.Sprintf("pull %d: %v", i, p.err))
		case p.tip != tip.String():
			failures = append(failures, fmt.Sprintf("pull %d: replica tip %q, want %s", i, p.tip, tip))
		}
		if pullObjects == 0 {
			pullObjects = p.objects
		}
	}
	// Walks.
	failures = append(failures, walks.errs...)
	for i, n := range walks.listed {
		if n != walks.listed[0] || (pullObjects > 0 && n != pullObjects) {
			failures = append(failures, fmt.Sprintf("walk %d listed %d objects, want %d (the zone's closure)", i, n, pullObjects))
			break
		}
	}
	if !serverAlive {
		failures = append(failures, "serve is no longer running")
	}
	if hwmErr != nil {
		failures = append(failures, fmt.Sprintf("server peak RSS: %v", hwmErr))
	}

	fmt.Printf("load: %d full pulls and %d full walks at once, done in %s\n", cfg.pulls, cfg.walks, elapsed.Round(time.Millisecond))
	fmt.Printf("pulls: %d ok of %d; %d objects each; %d requests in all (%d beyond refs+pack: retries after 503);"+
		" latency p50 %s p99 %s max %s\n",
		len(pulls)-countErrs(pulls), len(pulls), pullObjects, pullReqs, pullReqs-2*len(pulls),
		pct(pullDur, 50), pct(pullDur, 99), pct(pullDur, 100))
	fmt.Printf("walks: %d ok of %d; %d hashes each; %d answered 503 and retried after Retry-After;"+
		" latency (first try to answer) p50 %s p99 %s max %s\n",
		len(walks.listed), cfg.walks, first(walks.listed), walks.busy.Load(),
		pct(walks.took, 50), pct(walks.took, 99), pct(walks.took, 100))
	fmt.Printf("server: peak RSS (VmHWM) %.1f MiB; sampled every 50ms: VmRSS %.1f MiB, RssAnon %.1f MiB, RssFile %.1f MiB\n",
		float64(hwm)/1024, mib(&srv.peakRSS), mib(&srv.peakAnon), mib(&srv.peakFile))
	if len(failures) > 0 {
		for _, f := range failures {
			fmt.Fprintf(os.Stderr, "loadtest: %s\n", f)
		}
		if tail := srv.log.tail(20); tail != "" {
			fmt.Fprintf(os.Stderr, "loadtest: last lines of serve's log:\n%s", tail)
		}
		return fmt.Errorf("%d errors", len(failures))
	}
	fmt.Println("loadtest: ok, 0 errors")
	return nil
}

func mib(kb *atomic.Int64) float64 { return float64(kb.Load()) / 1024 }

func countErrs(ps []pullResult) int {
	n := 0
	for _, p := range ps {
		if p.err != nil {
			n++
		}
	}
	return n
}

func first(s []int) int {
	if len(s) == 0 {
		return 0
	}
	return s[0]
}

// pct is the p-th percentile of ds (nearest rank), rounded for printing.
func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (p*len(s)+99)/100 - 1
	i = min(max(i, 0), len(s)-1)
	return s[i].Round(time.Millisecond)
}

// makeZone writes the synthetic zone into a new repository at dir and
// closes it, so serve is the only process holding it.
func makeZone(dir string, records int) (repo.Hash, error) {
	r, err := repo.Open(dir, repo.Options{})
	if err != nil {
		return repo.Hash{}, err
	}
	tip, err := repotest.Synthetic(r, repotest.SyntheticOptions{Zone: "load.example.", N: records})
	if cerr := r.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return repo.Hash{}, fmt.Errorf("write the zone: %w", err)
	}
	return tip, nil
}

// server is the running `serve`: its URL, its log, and its RSS samples.
type server struct {
	cmd     *exec.Cmd
	url     string
	log     *lineLog
	peakRSS atomic.Int64 // KiB, sampled
	// RssAnon is private memory (Go heap, Badger's buffers); RssFile is
	// file-backed pages (Badger's memory-mapped tables and logs).
	peakAnon, peakFile atomic.Int64
	done               chan struct{}
}

var servingLine = regexp.MustCompile(`serving .* on (https?://\S+)`)

func startServe(ctx context.Context, bin, dir string, extra []string) (*server, error) {
	args := append([]string{"serve", "--repo", dir, "--listen", "127.0.0.1:0"}, extra...)
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start serve: %w", err)
	}
	s := &server{cmd: cmd, log: &lineLog{}, done: make(chan struct{})}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			s.log.add(line)
			if m := servingLine.FindStringSubmatch(line); m != nil {
				select {
				case urlc <- m[1]:
				default:
				}
			}
		}
	}()
	go func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-s.done:
				return
			case <-t.C:
			}
			for name, peak := range map[string]*atomic.Int64{"VmRSS": &s.peakRSS, "RssAnon": &s.peakAnon, "RssFile": &s.peakFile} {
				if kb, err := procStatusKB(cmd.Process.Pid, name); err == nil && kb > peak.Load() {
					peak.Store(kb)
				}
			}
		}
	}()
	select {
	case s.url = <-urlc:
		return s, nil
	case <-time.After(30 * time.Second):
	case <-ctx.Done():
	}
	s.stop()
	return nil, fmt.Errorf("serve did not report its address; its log:\n%s", s.log.tail(20))
}

// stop ends serve (SIGTERM, then SIGKILL after its grace period).
func (s *server) stop() {
	select {
	case <-s.done:
		return
	default:
		close(s.done)
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	exited := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(exited) }()
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-exited
	}
}

// procStatusKB reads one "Name: N kB" line of /proc/<pid>/status.
func procStatusKB(pid int, name string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", name, pid)
}

// lineLog keeps serve's log lines.
type lineLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *lineLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, s)
}

func (l *lineLog) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, s := range l.lines[max(0, len(l.lines)-n):] {
		b.WriteString("  " + s + "\n")
	}
	return b.String()
}

type pullResult struct {
	took     time.Duration
	err      error
	tip      string
	objects  int
	requests int
}

// runPulls runs n `pull` commands at once, each into a fresh replica.
func runPulls(ctx context.Context, bin, url, work string, n int) []pullResult {
	out := make([]pullResult, n)
	var wg sync.WaitGroup
	for i := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = pullOnce(ctx, bin, url, filepath.Join(work, fmt.Sprintf("replica-%02d", i)))
		}()
	}
	wg.Wait()
	return out
}

func pullOnce(ctx context.Context, bin, url, dir string) pullResult {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "pull", "--primary", url, "--repo", dir, "--json")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	res := pullResult{took: time.Since(start)}
	if err != nil {
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		res.err = fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
		return res
	}
	var j struct {
		Objects  int `json:"objects"`
		Requests int `json:"requests"`
		Branches []struct {
			New, Error string
		} `json:"branches"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &j); err != nil {
		res.err = fmt.Errorf("pull --json output: %w", err)
		return res
	}
	res.objects, res.requests = j.Objects, j.Requests
	if len(j.Branches) != 1 || j.Branches[0].Error != "" {
		res.err = fmt.Errorf("pull result %s", strings.TrimSpace(stdout.String()))
		return res
	}
	res.tip = j.Branches[0].New
	return res
}

type walkResults struct {
	mu     sync.Mutex
	took   []time.Duration
	listed []int
	errs   []string
	busy   atomic.Int64
}

// runWalks sends n full walks at once; a 503 is retried after its
// Retry-After until the run's deadline.
func runWalks(ctx context.Context, url string, tip repo.Hash, n int) *walkResults {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: 0}}
	body := []byte(`{"roots":["` + tip.String() + `"],"known":[]}`)
	res := &walkResults{}
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			listed, err := walkOnce(ctx, hc, url, body, &res.busy)
			res.mu.Lock()
			defer res.mu.Unlock()
			if err != nil {
				res.errs = append(res.errs, fmt.Sprintf("walk %d: %v", i, err))
				return
			}
			res.took = append(res.took, time.Since(start))
			res.listed = append(res.listed, listed)
		}()
	}
	wg.Wait()
	return res
}

// walkOnce returns how many hashes the walk listed.
func walkOnce(ctx context.Context, hc *http.Client, url string, body []byte, busy *atomic.Int64) (int, error) {
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v0/objects/walk", bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return 0, context.Cause(ctx)
			}
			return 0, err
		}
		b, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			return 0, fmt.Errorf("read walk answer: %w", err)
		}
		switch resp.StatusCode {
		case http.StatusOK:
			const head = `{"missing":[`
			if !bytes.HasPrefix(b, []byte(head)) || !bytes.HasSuffix(b, []byte("]}\n")) {
				return 0, fmt.Errorf("walk answer is not a missing list: %.80q", b)
			}
			return bytes.Count(b, []byte(`"`))/2 - 1, nil
		case http.StatusServiceUnavailable:
			busy.Add(1)
			wait, err := strconv.Atoi(resp.Header.Get("Retry-After"))
			if err != nil || wait < 1 {
				return 0, fmt.Errorf("503 without a usable Retry-After (%q): %s", resp.Header.Get("Retry-After"), bytes.TrimSpace(b))
			}
			select {
			case <-time.After(time.Duration(wait) * time.Second):
			case <-ctx.Done():
				return 0, errors.Join(context.Cause(ctx), errors.New("still refused with 503"))
			}
		default:
			return 0, fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(b))
		}
	}
}
