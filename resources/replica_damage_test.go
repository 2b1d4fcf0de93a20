package resources_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/internal/dirstate"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// crashText is what a crash looks like in Terraform's output: a Go panic
// and its goroutine dump. No diagnostic may contain it.
var crashText = regexp.MustCompile(`(?i)panic|goroutine`)

// failureWatch checks the errors of steps that must fail with a diagnostic
// (not a crash). ExpectError can only say what the error contains, so those
// steps leave it unset and arm the watch instead; the test case's
// ErrorCheck hands every step error to check.
type failureWatch struct {
	t    *testing.T
	step string
	want *regexp.Regexp
	seen bool
}

// arm expects the step about to run (named step) to fail with an error
// matching want. The step before it must have failed as expected.
func (w *failureWatch) arm(step string, want *regexp.Regexp) {
	w.t.Helper()
	w.done()
	w.step, w.want, w.seen = step, want, false
}

// done fails the test if the armed step did not fail as expected.
func (w *failureWatch) done() {
	w.t.Helper()
	if w.want != nil && !w.seen {
		w.t.Fatalf("%s: expected an error matching %s, got none", w.step, w.want)
	}
	w.want = nil
}

// check is the test case's ErrorCheck: an error is accepted only from an
// armed step, only once, only matching what it expects and never a crash.
func (w *failureWatch) check(err error) error {
	if w.want == nil || w.seen {
		return err
	}
	w.seen = true
	msg := err.Error()
	if m := crashText.FindString(msg); m != "" {
		return fmt.Errorf("%s: the error shows a crash (%q):\n%s", w.step, m, msg)
	}
	if !w.want.MatchString(msg) {
		return fmt.Errorf("%s: expected an error matching %s, got:\n%s", w.step, w.want, msg)
	}
	w.t.Logf("%s: %s", w.step, msg)
	return nil
}

// sameListing fails unless dir lists as before.
func sameListing(t *testing.T, what, dir, before string) {
	t.Helper()
	if got := dirstate.Listing(t, dir); got != before {
		t.Fatalf("%s modified the replica:\n%s\nwas:\n%s", what, got, before)
	}
}

// damage changes the file at path to what fn makes of its bytes and
// returns a func that puts them back.
func damage(t *testing.T, path string, fn func([]byte) []byte) (restore func()) {
	t.Helper()
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, fn(append([]byte(nil), orig...)), 0o644); err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		if err := os.WriteFile(path, orig, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// firstTable is the name of the first table (.sst) of the replica at dir.
func firstTable(t *testing.T, dir string) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.sst"))
	if err != nil || len(m) == 0 {
		t.Fatalf("no table in %s (%v): the apply should have left one", dir, err)
	}
	return filepath.Base(m[0])
}

// TestAccReplicaResource_damagedReplica (issues 8.4 and 8.5): a replica
// whose files are damaged (a truncated table, a truncated MANIFEST, a
// corrupt block) fails refresh with a diagnostic naming the damaged file
// and the recovery (fsck, then delete and apply), never a crash; and no
// plan, on a healthy replica or a damaged one, changes a byte of it.
func TestAccReplicaResource_damagedReplica(t *testing.T) {
	p := newTestPrimary(t, primaryOptions{})
	p.commit("example.com.", "main")
	dir := filepath.Join(t.TempDir(), "replica")
	config := replicaConfig(p.URL, dir, "")
	w := &failureWatch{t: t}
	var before string
	restore := func() {}
	damaged := func(what string) *regexp.Regexp {
		return errorLike("Replica is damaged", dir, "is damaged: "+what,
			"zonegit-replicate fsck --repo "+dir, "delete the directory", "terraform apply")
	}
	// damageStep damages a file, then plans: refresh fails with want.
	damageStep := func(name string, do func() *regexp.Regexp) resource.TestStep {
		return resource.TestStep{
			PreConfig: func() {
				sameListing(t, "the plan before "+name, dir, before)
				restore()
				want := do()
				before = dirstate.Listing(t, dir)
				w.arm(name, want)
			},
			Config:   config,
			PlanOnly: true,
		}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		ErrorCheck:               w.check,
		Steps: []resource.TestStep{
			{Config: config},
			// A healthy replica: the plan is empty and reads only.
			{
				PreConfig: func() { before = dirstate.Listing(t, dir) },
				Config:    config,
				PlanOnly:  true,
			},
			damageStep("a table cut in half", func() *regexp.Regexp {
				sst := firstTable(t, dir)
				restore = damage(t, filepath.Join(dir, sst), func(b []byte) []byte { return b[:len(b)/2] })
				return damaged("table " + sst)
			}),
			damageStep("a MANIFEST cut short", func() *regexp.Regexp {
				restore = damage(t, filepath.Join(dir, "MANIFEST"), func(b []byte) []byte { return b[:len(b)-3] })
				return damaged("MANIFEST")
			}),
			damageStep("a MANIFEST cut to its header", func() *regexp.Regexp {
				// It parses, and lists no table: a writable open used
				// to delete every table as unlisted.
				restore = damage(t, filepath.Join(dir, "MANIFEST"), func(b []byte) []byte { return b[:8] })
				return damaged("table " + firstTable(t, dir))
			}),
			damageStep("a MANIFEST that is not one", func() *regexp.Regexp {
				restore = damage(t, filepath.Join(dir, "MANIFEST"), func([]byte) []byte { return []byte("not a manifest") })
				return damaged("MANIFEST")
			}),
			damageStep("a corrupt block", func() *regexp.Regexp {
				sst := firstTable(t, dir)
				// The first data block, where this small replica keeps
				// its refs: its footer and index still check out.
				restore = damage(t, filepath.Join(dir, sst), func(b []byte) []byte {
					for i := 16; i < 80 && i < len(b)/4; i++ {
						b[i] ^= 0x5a
					}
					return b
				})
				return damaged("table " + sst)
			}),
			// Restored, the replica reads as before: the damage was all
			// there was, and the plans in between changed nothing.
			{
				PreConfig: func() {
					sameListing(t, "the plan of a damaged replica", dir, before)
					w.done()
					restore()
					restore = func() {}
					before = dirstate.Listing(t, dir)
				},
				Config:   config,
				PlanOnly: true,
			},
			// Recovery as documented: delete the directory, apply again.
			{
				PreConfig: func() {
					sameListing(t, "the plan of a restored replica", dir, before)
					if err := os.RemoveAll(dir); err != nil {
						t.Fatal(err)
					}
				},
				Config: config,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(replicaAddr, tfjsonpath.New("refs"), knownvalue.MapSizeExact(1)),
				},
			},
		},
	})
}

// TestReplicaWriterHelper is the writer that
// TestAccReplicaResource_damagedByWriter runs in a process of its own: it
// opens the replica for writing, commits a branch, reports the commit and
// waits, holding the replica, until it is killed.
func TestReplicaWriterHelper(t *testing.T) {
	dir := os.Getenv("ZONEGIT_TEST_REPLICA_WRITER")
	if dir == "" {
		t.Skip("helper process only")
	}
	r, err := repo.Open(dir, repo.Options{})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	res, err := r.Import(context.Background(), repo.ImportOptions{
		Zone: "example.com.", Branch: "written", Source: strings.NewReader(zoneFile("example.com.", 7)),
	})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("committed", res.Commit)
	time.Sleep(5 * time.Minute)
	os.Exit(1)
}

// replicaWriter is a TestReplicaWriterHelper process.
type replicaWriter struct {
	cmd    *exec.Cmd
	commit string
}

// startWriter starts a writer on dir and returns once it has committed.
func startWriter(t *testing.T, dir string) *replicaWriter {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestReplicaWriterHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), "ZONEGIT_TEST_REPLICA_WRITER="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &replicaWriter{cmd: cmd}
	t.Cleanup(func() { w.kill(t) })
	line, err := bufio.NewReader(out).ReadString('\n')
	hash, ok := strings.CutPrefix(strings.TrimSpace(line), "committed ")
	if err != nil || !ok {
		w.kill(t)
		t.Fatalf("writer said %q (%v)", line, err)
	}
	w.commit = hash
	return w
}

// kill SIGKILLs the writer (once) and waits for it to exit.
func (w *replicaWriter) kill(t *testing.T) {
	t.Helper()
	if w.cmd.ProcessState != nil {
		return
	}
	if err := w.cmd.Process.Kill(); err != nil {
		t.Errorf("kill writer: %v", err)
	}
	_ = w.cmd.Wait() // "signal: killed" is what we asked for
}

// TestAccReplicaResource_damagedByWriter (issue 8.5): while another
// process writes to the replica, the plan says it is in use and reads
// nothing; once that writer is SIGKILLed, leaving its write-ahead log
// unreplayed, the plan reads what it committed without replaying or
// changing anything; the next apply recovers the replica and destroy works.
func TestAccReplicaResource_damagedByWriter(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGKILL")
	}
	p := newTestPrimary(t, primaryOptions{})
	main := p.commit("example.com.", "main")
	dir := filepath.Join(t.TempDir(), "replica")
	config := replicaConfig(p.URL, dir, "destroy_data = true")
	w := &failureWatch{t: t}
	var writer *replicaWriter
	var before string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		ErrorCheck:               w.check,
		CheckDestroy:             checkDirGone(dir, "destroy with destroy_data = true left"),
		Steps: []resource.TestStep{
			{Config: config},
			{
				PreConfig: func() {
					writer = startWriter(t, dir)
					before = dirstate.Listing(t, dir)
					w.arm("a plan while a writer has the replica",
						errorLike("Replica is in use", dir, "in use by another process", "Wait for it to finish"))
				},
				Config:   config,
				PlanOnly: true,
			},
			{
				PreConfig: func() {
					w.done()
					sameListing(t, "the plan of a replica in use", dir, before)
					writer.kill(t)
					if m, _ := filepath.Glob(filepath.Join(dir, "*.mem")); len(m) == 0 {
						t.Fatal("the killed writer left no write-ahead log; nothing for a plan to replay")
					}
					before = dirstate.Listing(t, dir)
				},
				// terraform refresh: it reads what the killed writer
				// committed.
				RefreshState: true,
				Check: func(s *terraform.State) error {
					return resource.ComposeTestCheckFunc(
						resource.TestCheckResourceAttr(replicaAddr, "refs.%", "2"),
						resource.TestCheckResourceAttr(replicaAddr, "refs.example.com./main", main),
						resource.TestCheckResourceAttr(replicaAddr, "refs.example.com./written", writer.commit),
					)(s)
				},
			},
			{
				PreConfig: func() {
					sameListing(t, "the refresh of a replica left by a killed writer", dir, before)
				},
				Config:   config,
				PlanOnly: true,
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{
					// Refresh read the branch the killed writer committed.
					funcPlanCheck(func(_ context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
						refs := map[string]any{}
						if ps := req.Plan.PriorState; ps != nil && ps.Values != nil && ps.Values.RootModule != nil {
							for _, r := range ps.Values.RootModule.Resources {
								if r.Address == replicaAddr {
									refs, _ = r.AttributeValues["refs"].(map[string]any)
								}
							}
						}
						if refs["example.com./written"] != writer.commit || refs["example.com./main"] != main {
							resp.Error = fmt.Errorf("refreshed refs %v, want main %s and written %s", refs, main, writer.commit)
						}
					}),
				}},
			},
			// The next apply opens it for writing, which recovers it.
			{
				PreConfig: func() {
					sameListing(t, "the plan of a replica left by a killed writer", dir, before)
				},
				Config: config,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(replicaAddr, tfjsonpath.New("refs"), knownvalue.MapExact(map[string]knownvalue.Check{
						"example.com./main":    knownvalue.StringExact(main),
						"example.com./written": knownvalue.StringFunc(func(v string) error { return sameString(v, writer.commit) }),
					})),
				},
			},
		},
	})
}

func sameString(got, want string) error {
	if got != want {
		return fmt.Errorf("got %s, want %s", got, want)
	}
	return nil
}
