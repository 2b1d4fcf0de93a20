package repo

import (
	"context"
	"errors"
)

// FsckProblem is one defect found by Fsck.
type FsckProblem struct {
	Ref    string // the ref whose closure reached the object
	Hash   Hash
	Kind   string // "missing", "hash mismatch", "undecodable", "wrong kind"
	Detail string
}

// FsckReport summarises a repository check.
type FsckReport struct {
	Refs     int
	Objects  int // objects reached
	Problems []FsckProblem
}

// OK reports whether the repository is sound.
func (f *FsckReport) OK() bool { return len(f.Problems) == 0 }

// Fsck walks every ref's closure and verifies every object reached.
// TODO(fsck): implemented in the repo issue.
func (r *Repo) Fsck(ctx context.Context) (*FsckReport, error) {
	return nil, errors.New("fsck: not implemented yet")
}
