package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/zonegit/terraform-provider-zonegit/repo"
)

func init() {
	register("fsck", "check that every ref's closure is present and re-hashes (exit 1 if not)", runFsck)
}

type fsckConfig struct {
	repo string
	json bool
}

func parseFsckFlags(args []string, stderr io.Writer) (*fsckConfig, error) {
	fs := newFlagSet("fsck", stderr)
	c := &fsckConfig{}
	fs.StringVar(&c.repo, "repo", "", "repository directory to check, opened read-only (required)")
	fs.BoolVar(&c.json, "json", false, "print the report as JSON")
	if err := parseArgs(fs, args, "repo"); err != nil {
		return nil, err
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
	rep, err := fsckRepo(ctx, cfg.repo)
	if err != nil {
		return fail(stderr, "fsck: %v", err)
	}
	if cfg.json {
		out := fsckJSON{OK: rep.OK(), Refs: rep.Refs, Objects: rep.Objects, Stored: rep.Stored,
			Unreachable: rep.Unreachable, Problems: []fsckProblemJSON{}}
		for _, p := range rep.Problems {
			out.Problems = append(out.Problems, fsckProblemJSON{Ref: p.Ref, Hash: p.Hash.String(), Kind: p.Kind, Detail: p.Detail})
		}
		if err := json.NewEncoder(stdout).Encode(out); err != nil {
			return fail(stderr, "fsck: %v", err)
		}
	} else {
		for _, p := range rep.Problems {
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
		return exitFailed
	}
	return exitOK
}

func fsckRepo(ctx context.Context, dir string) (*repo.FsckReport, error) {
	// Read-only: a checker must not take the writer's lock or change
	// anything, and can run beside a server.
	r, err := repo.Open(dir, repo.Options{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.Fsck(ctx)
}
