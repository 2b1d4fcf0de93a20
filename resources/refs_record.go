package resources

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
)

// privateKeyPrimaryRefs is the private-state key of a replica's refs
// record: the copy of its primary's refs that the plan is computed from.
//
// Terraform plans a resource twice: once in the plan and again just before
// the apply, and the two plans must agree. A plan computed from whatever the
// primary says at that moment would disagree as soon as the primary moves in
// between. So the refresh (Read) fetches the primary's refs once
// (fetchRefsRecordForPlan) and keeps them in the resource's private state;
// Terraform carries that state in the saved plan into the apply, and both
// plans compute the refs from the same record. The apply then pulls exactly
// those hashes. ("Record", not "snapshot": a snapshot is a read-only copy of
// a repository, see replicate/server.Snapshotter.)
const privateKeyPrimaryRefs = "primary_refs"

// refsRecord is the primary's refs at one moment, and where they came from.
type refsRecord struct {
	Primary  string             `json:"primary"`
	Zones    []string           `json:"zones"`
	Branches []replicate.Branch `json:"branches"`
}

// privateGetter is the read side of the framework's private state.
type privateGetter interface {
	GetKey(ctx context.Context, key string) ([]byte, diag.Diagnostics)
}

// loadRefsRecord returns the refs record in private state if it was taken
// from primary, or nil.
func loadRefsRecord(ctx context.Context, private privateGetter, primary string) *replicate.RefsResponse {
	if private == nil {
		return nil
	}
	raw, diags := private.GetKey(ctx, privateKeyPrimaryRefs)
	if diags.HasError() || len(raw) == 0 {
		return nil
	}
	var s refsRecord
	if err := json.Unmarshal(raw, &s); err != nil || s.Primary != primary {
		return nil
	}
	return &replicate.RefsResponse{Zones: s.Zones, Branches: s.Branches}
}

// encodeRefsRecord serializes the refs of primary for private state.
func encodeRefsRecord(primary string, refs *replicate.RefsResponse) []byte {
	b, err := json.Marshal(refsRecord{Primary: primary, Zones: refs.Zones, Branches: refs.Branches})
	if err != nil {
		return nil // cannot happen for strings; no record is safe
	}
	return b
}

// fetchRefs asks the primary for its refs (one GET /v0/refs, retried).
func fetchRefs(ctx context.Context, opts replicate.ClientOptions) (*replicate.RefsResponse, error) {
	ctx, opts = withClientLogging(ctx, opts)
	start := time.Now()
	client, err := replicate.NewClientWithOptions(nil, opts)
	if err != nil {
		return nil, fmt.Errorf("invalid client settings: %w", err)
	}
	info, err := client.RefsInfo(ctx)
	if err != nil {
		return nil, err
	}
	refs := info.Refs
	tflog.Debug(ctx, "fetched primary refs", map[string]any{
		"primary": opts.PrimaryURL, "zones": len(refs.Zones), "branches": len(refs.Branches),
		"tags": len(refs.Tags), "duration_ms": time.Since(start).Milliseconds(),
	})
	return refs, nil
}
