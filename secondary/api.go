// Package secondary is a long-lived secondary: a daemon that owns one
// replica directory, pulls it from one configured primary by a desired
// state that survives restarts (the selection, pins and prune of
// zonegit_replica, plus whether to keep following), serves it read-only
// over the replication protocol, and takes orders over an authenticated
// control API (ControlPath). ControlClient is that API's client, for the
// zonegit_secondary resource and for scripts.
package secondary

import "time"

// ControlPath is the prefix of every control endpoint; the replication
// protocol keeps replicate.BasePath on the same listener.
const ControlPath = "/control/v1"

// Desired is the desired state: the same selection semantics as
// zonegit_replica (replicate.Selection).
type Desired struct {
	// Zones: nil/empty = all; each validated with replicate.ValidateZonePattern.
	Zones []string `json:"zones,omitempty"`
	// Branches: nil/empty = all; each validated with replicate.ValidateBranchPattern.
	Branches []string `json:"branches,omitempty"`
	// Pins: "<zone>/<branch>" -> 64 hex digits; replicate.ValidatePin.
	Pins  map[string]string `json:"pins,omitempty"`
	Prune bool              `json:"prune"`
	// Follow keeps following the primary every --follow interval; false
	// holds the applied refs.
	Follow bool `json:"follow"`
}

// ApplyRequest is the body of PUT /desired.
type ApplyRequest struct {
	Desired Desired `json:"desired"`
	// Expect, when not nil, is the exact refs the pull must produce (the
	// plan Terraform showed): the daemon pulls exactly these hashes
	// (replicate PullOptions.Exactly), as zonegit_replica's apply does,
	// then stores Desired. An empty, non-nil Expect is a plan of "no
	// branches at all" and is sent as {}: with Prune the daemon deletes
	// every branch, without it moves none, even if the primary grew a
	// matching branch since the plan. nil is sent as null (absent means
	// the same): the daemon plans by itself, now.
	Expect map[string]string `json:"expect"`
}

// Plan is the answer of POST /plan.
type Plan struct {
	Primary string            `json:"primary"`
	Current map[string]string `json:"current"` // the daemon's branches now
	Refs    map[string]string `json:"refs"`    // the branches an apply of this Desired would produce now
}

// ApplyResult is the answer of PUT /desired.
type ApplyResult struct {
	Status Status     `json:"status"` // after the pull
	Pull   PullReport `json:"pull"`
}

// Status is the answer of GET /status.
type Status struct {
	Primary  string            `json:"primary"`
	Follow   string            `json:"follow"`  // the --follow interval ("30s"), "" when started without it
	Desired  *Desired          `json:"desired"` // null = never set or cleared
	Refs     map[string]string `json:"refs"`    // branches "<zone>/<branch>" -> hex
	Tags     map[string]string `json:"tags,omitempty"`
	LastPull *PullReport       `json:"last_pull"` // null before the first pull
	Busy     bool              `json:"busy"`      // a pull is running
}

// PullReport is one pull: what GET /pulls lists and the log line says.
type PullReport struct {
	Started    time.Time    `json:"started"`
	DurationMS int64        `json:"duration_ms"`
	Primary    string       `json:"primary"`
	Trigger    string       `json:"trigger"` // "apply" | "follow" | "start"
	Objects    int          `json:"objects"`
	Bytes      int64        `json:"bytes"`
	Moved      []RefMove    `json:"moved"`
	Errors     []BranchFail `json:"errors,omitempty"`
	Error      string       `json:"error,omitempty"` // the pull's error, "" when every branch applied
}

// RefMove is one branch or tag a pull moved, created or pruned.
type RefMove struct {
	Ref    string `json:"ref"` // "<zone>/<name>"
	Old    string `json:"old"` // "" = was absent
	New    string `json:"new"` // "" = pruned
	Pruned bool   `json:"pruned"`
	Tag    bool   `json:"tag"`
}

// BranchFail is one branch a pull could not apply.
type BranchFail struct {
	Ref   string `json:"ref"`
	Error string `json:"error"`
}

// Pull triggers, PullReport.Trigger.
const (
	TriggerApply  = "apply"
	TriggerFollow = "follow"
	TriggerStart  = "start"
)
