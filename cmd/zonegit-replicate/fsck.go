package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/repo"
)

func init() {
	register("fsck", "check that every ref's closure is present and re-hashes (exit 1 if not)", runFsck)
}

type fsckConfig struct {
	repo string
	json bool
	wait time.Duration
}

func parseFsckFlags(args []string, stderr io.Writer) (*fsckConfig, error) {
	fs := newFlagSet("fsck", stderr)
	c := &fsckConfig{}
	fs.StringVar(&c.repo, "repo", "", "repository directory to check, opened read-only (required)")
	fs.BoolVar(&c.json, "json", false, "print the report as JSON")
	fs.DurationVar(&c.wait, "wait", time.Minute, "how long to wait for a writer (import, pull, the zonegit tools) to close the repository")
	if err := parseArgs(fs, args, "repo"); err != nil {
		return nil, err
	}
	if c.wait < 0 {
		return nil, fmt.Errorf("--wait %s: must not be negative", c.wait)
	}
	return c, nil
}

type fsckProblemJSON struct {
	Ref    string `json:"ref"`
	Hash   string `json:"hash"`
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
}

type fsckJSON struct {
	OK          bool              `json:"ok"`
	Refs        int               `json:"refs"`
	Objects     int               `json:"objects"`
	Stored      int               `json:"stored"`
	Unreachable int               `json:"unreachable"`
	Problems    []fsckProblemJSON `json:"problems"`
}

func runFsck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFsckFlags(args, stderr)
	if err != nil {
		return parseFailed(stderr, "fsck", err)
	}
	rep, err := fsckRepo(ctx, cfg, stderr)
	var damage *repo.DamageError
	if errors.As(err, &damage) {
		// Damage Badger cannot even open is the report.
		rep = &repo.FsckReport{Problems: []repo.FsckProblem{{Kind: "damaged", Detail: damage.What + ": " + damage.Detail}}}
	} else if err != nil {
		return fail(stderr, "fsck: %v", err)
	}
	if cfg.json {
		out := fsckJSON{OK: rep.OK(), Refs: rep.Refs, Objects: rep.Objects, Stored: rep.Stored,
			Unreachable: rep.Unreachable, Problems: []fsckProblemJSON{}}
		for _, p := range rep.Problems {
			h := p.Hash.String()
			if p.Hash.IsZero() {
				h = ""
			}
			out.Problems = append(out.Problems, fsckProblemJSON{Ref: p.Ref, Hash: h, Kind: p.Kind, Detail: p.Detail})
		}
		if err := json.NewEncoder(stdout).Encode(out); err != nil {
			return fail(stderr, "fsck: %v", err)
		}
	} else {
		for _, p := range rep.Problems {
			if p.Hash.IsZero() {
				fmt.Fprintf(stdout, "%s: %s\n", p.Kind, p.Detail)
				continue
			}
			fmt.Fprintln(stdout, p)
		}
		verdict := "ok"
		if !rep.OK() {
			verdict = fmt.Sprintf("NOT SOUND: %d problems", len(rep.Problems))
		}
		fmt.Fprintf(stdout, "%s: %d refs, %d objects reached, %d stored, %d unreachable\n",
			verdict, rep.Refs, rep.Objects, rep.Stored, rep.Unreachable)
	}
	if !rep.OK() {
		fmt.Fprintf(stderr, "zonegit-replicate fsck: repository %s is not sound; delete the directory and pull (or terraform apply) again\n", cfg.repo)
		return exitFailed
	}
	return exitOK
}

// fsckRepo checks a private read-only snapshot of the repository (see
// package repo): nothing in the directory changes, even when it is
// damaged or a writer crashed. While a writer has the directory open it
// cannot be read consistently, so fsck waits up to --wait for it to close.
func fsckRepo(ctx context.Context, cfg *fsckConfig, stderr io.Writer) (*repo.FsckReport, error) {
	deadline := time.Now().Add(cfg.wait)
	r, err := repo.Open(cfg.repo, repo.Options{ReadOnly: true})
	for waited := false; errors.Is(err, repo.ErrLocked) && time.Now().Before(deadline); waited = true {
		if !waited {
			fmt.Fprintf(stderr, "zonegit-replicate fsck: %s is being written; waiting up to %s for the writer to finish\n", cfg.repo, cfg.wait)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (%w)", err, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
		r, err = repo.Open(cfg.repo, repo.Options{ReadOnly: true})
	}
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.Fsck(ctx)
}
