package resources

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/mapvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/repo"
)

var (
	_ resource.Resource                = (*ReplicaResource)(nil)
	_ resource.ResourceWithConfigure   = (*ReplicaResource)(nil)
	_ resource.ResourceWithModifyPlan  = (*ReplicaResource)(nil)
	_ resource.ResourceWithImportState = (*ReplicaResource)(nil)
)

// Default apply timeouts; a large first pull can take a while.
const (
	defaultCreateTimeout = 30 * time.Minute
	defaultUpdateTimeout = 30 * time.Minute
)

// NewReplicaResource returns the zonegit_replica resource.
func NewReplicaResource() resource.Resource {
	return &ReplicaResource{}
}

// ReplicaResource keeps a local zonegit repository (a secondary) in sync with
// a primary. The plan shows the refs an apply will produce, and the apply
// pulls exactly those hashes.
type ReplicaResource struct {
	data *ProviderData
}

// replicaResourceModel is the resource's configuration and state.
type replicaResourceModel struct {
	ID          types.String   `tfsdk:"id"`
	Path        types.String   `tfsdk:"path"`
	PrimaryURL  types.String   `tfsdk:"primary_url"`
	Zones       types.List     `tfsdk:"zones"`
	Branches    types.List     `tfsdk:"branches"`
	Pins        types.Map      `tfsdk:"pins"`
	Prune       types.Bool     `tfsdk:"prune"`
	DestroyData types.Bool     `tfsdk:"destroy_data"`
	Refs        types.Map      `tfsdk:"refs"`
	LastPull    types.Object   `tfsdk:"last_pull"`
	Timeouts    timeouts.Value `tfsdk:"timeouts"`
}

// lastPullAttrTypes is the shape of last_pull.
var lastPullAttrTypes = map[string]attr.Type{
	"objects":     types.Int64Type,
	"bytes":       types.Int64Type,
	"duration_ms": types.Int64Type,
	"primary":     types.StringType,
}

// pinKeyPattern is "<zone>/<branch>": a zone with its trailing dot, a slash,
// and a branch name without slashes or spaces.
const pinKeyPattern = `^[^/\s]+\./[^/\s]+$`

func (r *ReplicaResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_replica"
}

func (r *ReplicaResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A local zonegit repository (a secondary) replicated from a zonegit primary.\n\n" +
			"`terraform plan` asks the primary for its branch tips (one `GET /v0/refs`) and shows in `refs` exactly " +
			"the refs the apply will produce: the primary's tips within the `zones`/`branches` selection, with `pins` " +
			"applied and, with `prune`, branches the primary no longer has removed. The apply pulls exactly those " +
			"hashes, even if the primary moved after the plan, so the result always equals the plan. When nothing " +
			"changed on the primary the plan is empty.\n\n" +
			"Updates plan from the primary's refs as read during refresh, which the saved plan carries into the " +
			"apply. A replica being created has no refresh: if the primary moves between that plan and its apply, " +
			"Terraform stops with an inconsistent-plan error before anything is pulled; plan and apply again.\n\n" +
			"The replica is an ordinary zonegit repository directory that a zonegit daemon can serve. Only one " +
			"writer may hold it at a time; a second apply or `zonegit-replicate pull` on the same path fails fast.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				MarkdownDescription: "The absolute path of the replica directory.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"path": schema.StringAttribute{
				MarkdownDescription: "Directory of the local repository. It is created on the first apply if it does " +
					"not exist. Changing it forces a new replica.",
				Required:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
				Validators:    []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"primary_url": schema.StringAttribute{
				MarkdownDescription: "Base URL of the primary (`http://` or `https://`), overriding the provider's " +
					"`primary_url`. One of the two must be set.",
				Optional:   true,
				Validators: []validator.String{PrimaryURLValidator()},
			},
			"zones": schema.ListAttribute{
				MarkdownDescription: "Zones to replicate: exact names with the trailing dot (`example.com.`) or glob " +
					"patterns (`*.example.com.`). Omit to replicate every zone.",
				ElementType: types.StringType,
				Optional:    true,
				Validators: []validator.List{
					listvalidator.SizeAtLeast(1),
					listvalidator.ValueStringsAre(globValidator{}),
				},
			},
			"branches": schema.ListAttribute{
				MarkdownDescription: "Branches to replicate in each selected zone: exact names (`main`) or glob " +
					"patterns (`release-*`). Omit to replicate every branch.",
				ElementType: types.StringType,
				Optional:    true,
				Validators: []validator.List{
					listvalidator.SizeAtLeast(1),
					listvalidator.ValueStringsAre(globValidator{}),
				},
			},
			"pins": schema.MapAttribute{
				MarkdownDescription: "Exact commits to replicate instead of the primary's tips, as " +
					"`\"<zone>/<branch>\" = \"<64-hex commit hash>\"` (for example " +
					"`\"example.com./main\" = \"3fa1...\"`). Pins win over the filters, can move a branch forward or " +
					"back, and need not be the primary's current tip, but the primary must have the commit.",
				ElementType: types.StringType,
				Optional:    true,
				Validators: []validator.Map{
					mapvalidator.KeysAre(stringvalidator.RegexMatches(regexp.MustCompile(pinKeyPattern),
						`must be "<zone>/<branch>" with the zone's trailing dot, for example "example.com./main"`)),
					mapvalidator.ValueStringsAre(stringvalidator.RegexMatches(regexp.MustCompile(`^[0-9a-f]{64}$`),
						"must be a commit hash: 64 lowercase hex digits")),
				},
			},
			"prune": schema.BoolAttribute{
				MarkdownDescription: "Delete local branches, within the selection, that the primary no longer has. " +
					"Pinned branches are never pruned. Local tags in the selected zones that the primary no longer " +
					"lists are deleted too, but only when the primary offers the `tags` extension (a plain v0 primary " +
					"does not list tags). Defaults to `false`.",
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(false),
			},
			"destroy_data": schema.BoolAttribute{
				MarkdownDescription: "When `true`, destroying the resource deletes the replica directory. When `false` " +
					"(the default), destroy only removes the replica from Terraform state and keeps its data.",
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(false),
			},
			"refs": schema.MapAttribute{
				MarkdownDescription: "Branches present in the local repository, as `\"<zone>/<branch>\" = \"<commit hash>\"`. " +
					"In a plan, the refs the apply will produce.",
				ElementType: types.StringType,
				Computed:    true,
			},
			"last_pull": schema.SingleNestedAttribute{
				MarkdownDescription: "Statistics of the last apply that moved refs. Unchanged while the refs do not change.",
				Computed:            true,
				Attributes: map[string]schema.Attribute{
					"objects": schema.Int64Attribute{
						MarkdownDescription: "Objects fetched and stored.",
						Computed:            true,
					},
					"bytes": schema.Int64Attribute{
						MarkdownDescription: "Payload bytes fetched.",
						Computed:            true,
					},
					"duration_ms": schema.Int64Attribute{
						MarkdownDescription: "Duration of the pull in milliseconds.",
						Computed:            true,
					},
					"primary": schema.StringAttribute{
						MarkdownDescription: "URL of the primary pulled from.",
						Computed:            true,
					},
				},
			},
		},
		Blocks: map[string]schema.Block{
			"timeouts": timeouts.Block(ctx, timeouts.Opts{Create: true, Update: true}),
		},
	}
}

func (r *ReplicaResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	data, diags := providerDataFrom(req.ProviderData)
	resp.Diagnostics.Append(diags...)
	if data != nil {
		r.data = data
	}
}

// ModifyPlan computes the refs the apply will produce: the primary's tips
// (one GET /v0/refs) within the selection, pins applied, prunes removed, on
// top of the local branches. Equal to state means an empty plan.
func (r *ReplicaResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return // destroy
	}
	var plan replicaResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	var state *replicaResourceModel
	if !req.State.Raw.IsNull() {
		state = new(replicaResourceModel)
		resp.Diagnostics.Append(req.State.Get(ctx, state)...)
		if resp.Diagnostics.HasError() {
			return
		}
	}

	if plan.Path.IsUnknown() || plan.PrimaryURL.IsUnknown() || plan.Zones.IsUnknown() ||
		plan.Branches.IsUnknown() || plan.Pins.IsUnknown() || plan.Prune.IsUnknown() || r.data == nil {
		// Known only at apply time: the apply computes the refs then.
		plan.Refs = types.MapUnknown(types.StringType)
		plan.LastPull = types.ObjectUnknown(lastPullAttrTypes)
		resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
		return
	}

	dir, err := absPath(plan.Path.ValueString())
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("path"), "Invalid replica path", err.Error())
		return
	}
	plan.ID = types.StringValue(dir)

	opts, sel, diags := r.pullSettings(ctx, &plan)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	// The refresh's snapshot of the primary, so that this plan and the one
	// Terraform makes again before applying agree (see privateKeyPrimaryRefs).
	var primary *replicate.RefsResponse
	if state != nil {
		primary = loadSnapshot(ctx, req.Private, opts.PrimaryURL)
	}
	if primary == nil {
		var err error
		if primary, err = fetchRefs(ctx, opts); err != nil {
			resp.Diagnostics.Append(refsError(opts.PrimaryURL, err))
			return
		}
	}
	resp.Diagnostics.Append(resp.Private.SetKey(ctx, privateKeyPrimaryRefs, encodeSnapshot(opts.PrimaryURL, primary))...)
	planned, diags := planRefs(ctx, primary, opts.PrimaryURL, dir, sel)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	refs, diags := types.MapValueFrom(ctx, types.StringType, planned)
	resp.Diagnostics.Append(diags...)
	plan.Refs = refs

	// last_pull changes only with the refs, so an unchanged primary gives
	// an empty plan.
	if state != nil && state.ID.ValueString() == dir && state.Refs.Equal(refs) && !state.LastPull.IsUnknown() {
		plan.LastPull = state.LastPull
	} else {
		plan.LastPull = types.ObjectUnknown(lastPullAttrTypes)
	}
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

func (r *ReplicaResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan replicaResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Create(ctx, defaultCreateTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	state, moved, diags := r.apply(ctx, &plan)
	resp.Diagnostics.Append(diags...)
	if state == nil || (resp.Diagnostics.HasError() && !moved) {
		// Nothing was replicated: the replica does not exist for Terraform.
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, state)...)
}

func (r *ReplicaResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state replicaResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	p := state.Path.ValueString()
	if p == "" {
		p = state.ID.ValueString()
	}
	dir, err := absPath(p)
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("path"), "Invalid replica path", err.Error())
		return
	}
	local, exists, err := readLocalRefs(dir)
	if !exists {
		tflog.Info(ctx, "replica directory is gone; removing the replica from state", map[string]any{"path": dir})
		resp.State.RemoveResource(ctx)
		resp.Diagnostics.Append(resp.Private.SetKey(ctx, privateKeyPrimaryRefs, nil)...)
		return
	}
	if errors.Is(err, repo.ErrLocked) {
		resp.Diagnostics.Append(openError(dir, err))
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Cannot read replica",
			fmt.Sprintf("Reading the branches of the replica at %s failed: %v. Check that the path is a zonegit repository.", dir, err))
		return
	}
	refs, diags := types.MapValueFrom(ctx, types.StringType, refsMap(local))
	resp.Diagnostics.Append(diags...)
	state.ID = types.StringValue(dir)
	if state.Path.IsNull() {
		state.Path = types.StringValue(p)
	}
	state.Refs = refs
	if state.Prune.IsNull() {
		state.Prune = types.BoolValue(false)
	}
	if state.DestroyData.IsNull() {
		state.DestroyData = types.BoolValue(false)
	}
	if state.LastPull.IsUnknown() {
		state.LastPull = types.ObjectNull(lastPullAttrTypes)
	}
	tflog.Debug(ctx, "read replica refs", map[string]any{"path": dir, "branches": len(local)})
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)

	// Snapshot the primary's refs for the plan (see privateKeyPrimaryRefs).
	// A primary that cannot be reached is not a refresh error: the plan
	// asks again and reports it.
	var snapshot []byte
	if r.data != nil {
		opts := r.data.Client
		if !state.PrimaryURL.IsNull() {
			opts.PrimaryURL = state.PrimaryURL.ValueString()
		}
		if opts.PrimaryURL != "" {
			if primary, err := fetchRefs(ctx, opts); err == nil {
				snapshot = encodeSnapshot(opts.PrimaryURL, primary)
			} else {
				tflog.Warn(ctx, "cannot snapshot the primary's refs during refresh", map[string]any{"primary": opts.PrimaryURL, "error": err.Error()})
			}
		}
	}
	resp.Diagnostics.Append(resp.Private.SetKey(ctx, privateKeyPrimaryRefs, snapshot)...)
}

func (r *ReplicaResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan replicaResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Update(ctx, defaultUpdateTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	state, _, diags := r.apply(ctx, &plan)
	resp.Diagnostics.Append(diags...)
	if state == nil {
		// The replica could not be opened: nothing changed, keep the prior state.
		resp.State.Raw = req.State.Raw
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, state)...)
}

func (r *ReplicaResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state replicaResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	dir, err := absPath(state.ID.ValueString())
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("id"), "Invalid replica path", err.Error())
		return
	}
	if !state.DestroyData.ValueBool() {
		tflog.Info(ctx, "destroy_data is false: forgetting the replica and keeping its data", map[string]any{"path": dir})
		return
	}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return
	}
	// Taking the lock proves no other writer is using the replica.
	rp, err := repo.Open(dir, repo.Options{})
	if err != nil {
		resp.Diagnostics.Append(openError(dir, err))
		return
	}
	if err := rp.Close(); err != nil {
		resp.Diagnostics.AddError("Cannot delete replica", fmt.Sprintf("Closing the replica at %s failed: %v.", dir, err))
		return
	}
	if err := os.RemoveAll(dir); err != nil {
		resp.Diagnostics.AddError("Cannot delete replica",
			fmt.Sprintf("Removing the replica directory %s failed: %v. Remove it by hand, or set destroy_data = false to keep it.", dir, err))
		return
	}
	tflog.Info(ctx, "deleted replica directory", map[string]any{"path": dir})
}

// ImportState takes the replica's path as its ID:
// terraform import zonegit_replica.x /var/lib/zonegit/secondary
func (r *ReplicaResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	dir, err := absPath(req.ID)
	if err != nil {
		resp.Diagnostics.AddError("Invalid import ID",
			fmt.Sprintf("The import ID must be the replica's directory, for example /var/lib/zonegit/secondary: %v.", err))
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("path"), req.ID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), dir)...)
}

// selection is what a replica replicates, from its configuration.
type selection struct {
	Zones, Branches []string
	Pins            map[string]string
	Prune           bool
}

// selects reports whether the branch "<zone>/<branch>" is replicated: it is
// pinned, or its zone and name match the filters.
func (s selection) selects(key string) bool {
	if _, ok := s.Pins[key]; ok {
		return true
	}
	zone, name, ok := repo.SplitRefPath(key)
	return ok && matchAny(s.Zones, zone) && matchAny(s.Branches, name)
}

// pullSettings resolves the client options (provider settings, the
// resource's primary_url) and the selection of a configuration.
func (r *ReplicaResource) pullSettings(ctx context.Context, m *replicaResourceModel) (replicate.ClientOptions, selection, diag.Diagnostics) {
	var diags diag.Diagnostics
	opts := r.data.Client
	if !m.PrimaryURL.IsNull() {
		opts.PrimaryURL = m.PrimaryURL.ValueString()
	}
	if opts.PrimaryURL == "" {
		diags.AddAttributeError(path.Root("primary_url"), "Missing primary URL",
			"The replica does not know which primary to pull from. Set primary_url on this resource, or primary_url "+
				"in the provider configuration (or the ZONEGIT_PRIMARY_URL environment variable).")
		return opts, selection{}, diags
	}
	var sel selection
	diags.Append(m.Zones.ElementsAs(ctx, &sel.Zones, false)...)
	diags.Append(m.Branches.ElementsAs(ctx, &sel.Branches, false)...)
	if !m.Pins.IsNull() {
		diags.Append(m.Pins.ElementsAs(ctx, &sel.Pins, false)...)
	}
	sel.Prune = m.Prune.ValueBool()
	return opts, sel, diags
}

// planRefs returns the refs the local repository at dir will have once the
// selection is applied, given the primary's refs.
func planRefs(ctx context.Context, primary *replicate.RefsResponse, primaryURL, dir string, sel selection) (map[string]string, diag.Diagnostics) {
	var diags diag.Diagnostics
	local, _, err := readLocalRefs(dir)
	if errors.Is(err, repo.ErrLocked) {
		diags.Append(openError(dir, err))
		return nil, diags
	}
	if err != nil {
		diags.AddAttributeError(path.Root("path"), "Cannot read replica",
			fmt.Sprintf("Reading the branches of the replica at %s failed: %v. Check that the path is a zonegit repository, "+
				"or choose another path. If another process (an apply or zonegit-replicate pull) is writing to it, wait "+
				"for it to finish and plan again.", dir, err))
		return nil, diags
	}
	p, err := replicate.Plan(primary, local, sel.pullOptions())
	if err != nil {
		diags.AddError("Cannot plan replica",
			fmt.Sprintf("Selecting branches of primary %s for the replica at %s failed: %v. Check zones, branches and pins.", primaryURL, dir, err))
		return nil, diags
	}
	for _, e := range p.Invalid {
		what := "Branch"
		if e.Tag {
			what = "Tag"
		}
		diags.AddError("Primary offers an invalid ref", fmt.Sprintf(
			"%s %q of zone %q (primary %s): %v. The replica cannot store it. Fix it on the primary, or leave it "+
				"out of the replica's zones and branches filters.", what, e.Name, e.Zone, primaryURL, e.Err))
	}
	planned := p.Refs(local)
	tflog.Info(ctx, "planned replica refs", map[string]any{
		"path": dir, "primary": primaryURL, "primary_branches": len(primary.Branches),
		"local_branches": len(local), "targets": len(p.Targets), "prune": len(p.Prune),
	})
	return planned, diags
}

func (s selection) pullOptions() replicate.PullOptions {
	return replicate.PullOptions{Zones: s.Zones, Branches: s.Branches, Pins: s.Pins, Prune: s.Prune}
}

// apply pulls the planned refs into the replica and returns the new state.
// state is nil when the replica could not be opened (nothing changed); moved
// says whether any ref moved.
func (r *ReplicaResource) apply(ctx context.Context, plan *replicaResourceModel) (state *replicaResourceModel, moved bool, diags diag.Diagnostics) {
	if r.data == nil {
		diags.AddError("Provider not configured",
			"The zonegit provider was not configured before the replica was applied. This is a bug in the zonegit provider; please report it.")
		return nil, false, diags
	}
	dir, err := absPath(plan.Path.ValueString())
	if err != nil {
		diags.AddAttributeError(path.Root("path"), "Invalid replica path", err.Error())
		return nil, false, diags
	}
	opts, sel, d := r.pullSettings(ctx, plan)
	diags.Append(d...)
	if diags.HasError() {
		return nil, false, diags
	}

	// The refs to produce: the plan's, or, if the plan could not know them
	// (unknown inputs), the primary's now.
	var planned map[string]string
	if plan.Refs.IsUnknown() || plan.Refs.IsNull() {
		primary, err := fetchRefs(ctx, opts)
		if err != nil {
			diags.Append(refsError(opts.PrimaryURL, err))
			return nil, false, diags
		}
		planned, d = planRefs(ctx, primary, opts.PrimaryURL, dir, sel)
	} else {
		d = plan.Refs.ElementsAs(ctx, &planned, false)
	}
	diags.Append(d...)
	if diags.HasError() {
		return nil, false, diags
	}

	if err := os.MkdirAll(dir, 0o755); err != nil {
		diags.AddAttributeError(path.Root("path"), "Cannot create replica directory",
			fmt.Sprintf("Creating %s failed: %v. Check the path and its permissions.", dir, err))
		return nil, false, diags
	}
	local, err := repo.Open(dir, repo.Options{})
	if err != nil {
		diags.Append(openError(dir, err))
		return nil, false, diags
	}
	defer local.Close()
	before, err := local.Branches("")
	if err != nil {
		diags.AddError("Cannot read replica", fmt.Sprintf("Listing the branches of the replica at %s failed: %v.", dir, err))
		return nil, false, diags
	}

	// Pin every selected branch to its planned hash and move nothing else,
	// so a primary that moved (or grew a branch) after the plan changes
	// nothing; branches the plan drops are left to prune.
	pull := sel.pullOptions()
	pull.PinsOnly = true
	pull.Pins = map[string]string{}
	for key, hash := range planned {
		if sel.selects(key) {
			pull.Pins[key] = hash
		}
	}

	ctx, opts = withClientLogging(ctx, opts)
	client, err := replicate.NewClientWithOptions(local, opts)
	if err != nil {
		diags.AddError("Invalid replication client settings",
			fmt.Sprintf("Cannot build a client for primary %s: %v. Check primary_url and the TLS settings of the provider.", opts.PrimaryURL, err))
		return nil, false, diags
	}
	tflog.Info(ctx, "pulling replica", map[string]any{"path": dir, "primary": opts.PrimaryURL, "pinned_branches": len(pull.Pins)})
	res, pullErr := client.PullWith(ctx, pull)
	failed := 0
	if res != nil {
		for _, b := range res.Branches {
			if b.Err == nil {
				continue
			}
			failed++
			diags.AddError("Replica pull failed", fmt.Sprintf(
				"Branch %s of zone %s (replica %s, primary %s): %v. The branch was left at %s; branches that "+
					"succeeded are applied and recorded in state. Fix the cause and run apply again.",
				b.Name, b.Zone, dir, opts.PrimaryURL, b.Err, shortOr(b.Old, "(absent)")))
		}
		tflog.Info(ctx, "pulled replica", map[string]any{
			"path": dir, "primary": opts.PrimaryURL, "branches": len(res.Branches), "failed": failed,
			"objects": res.Objects, "bytes": res.Bytes, "requests": res.Requests, "duration_ms": res.Duration.Milliseconds(),
		})
	}
	if pullErr != nil && failed == 0 {
		diags.AddError("Replica pull failed", fmt.Sprintf(
			"Pulling from primary %s into the replica at %s failed: %v. Check that the primary is reachable "+
				"and the provider's token and TLS settings, then run apply again.", opts.PrimaryURL, dir, pullErr))
	}

	after, err := local.Branches("")
	if err != nil {
		diags.AddError("Cannot read replica", fmt.Sprintf("Listing the branches of the replica at %s failed: %v.", dir, err))
		return nil, false, diags
	}
	got := refsMap(after)
	moved = !maps.Equal(got, refsMap(before))
	if !diags.HasError() && !maps.Equal(got, planned) {
		diags.AddError("Replica differs from the plan", fmt.Sprintf(
			"After pulling from primary %s, the replica at %s has refs that the plan did not show: %s. The primary's "+
				"branches changed between plan and apply in a way pins cannot hold (a new branch in the selection). "+
				"Run plan and apply again.", opts.PrimaryURL, dir, refsDiff(planned, got)))
	}

	state = new(replicaResourceModel)
	*state = *plan
	state.ID = types.StringValue(dir)
	refs, d := types.MapValueFrom(ctx, types.StringType, got)
	diags.Append(d...)
	state.Refs = refs
	if plan.LastPull.IsUnknown() || moved {
		var stats = map[string]attr.Value{
			"objects":     types.Int64Value(0),
			"bytes":       types.Int64Value(0),
			"duration_ms": types.Int64Value(0),
			"primary":     types.StringValue(opts.PrimaryURL),
		}
		if res != nil {
			stats["objects"] = types.Int64Value(int64(res.Objects))
			stats["bytes"] = types.Int64Value(res.Bytes)
			stats["duration_ms"] = types.Int64Value(res.Duration.Milliseconds())
		}
		lp, d := types.ObjectValue(lastPullAttrTypes, stats)
		diags.Append(d...)
		state.LastPull = lp
	}
	return state, moved, diags
}

// openError explains a failure to open the replica for writing.
func openError(dir string, err error) diag.Diagnostic {
	if errors.Is(err, repo.ErrLocked) {
		return diag.NewErrorDiagnostic("Replica is in use",
			fmt.Sprintf("replica %s is in use by another process (another apply or zonegit-replicate pull?). "+
				"Wait for it to finish, then run Terraform again.", dir))
	}
	return diag.NewErrorDiagnostic("Cannot open replica",
		fmt.Sprintf("Opening the replica at %s for writing failed: %v. Check that the path is a zonegit repository "+
			"(or an empty or absent directory) and writable.", dir, err))
}

// refsError explains a failure to read a primary's refs.
func refsError(url string, err error) diag.Diagnostic {
	return diag.NewErrorDiagnostic("Cannot read the primary's refs",
		fmt.Sprintf("GET %s/v0/refs failed: %v. Check that the primary is running and reachable at that URL, and "+
			"the provider's token, headers and TLS settings.", strings.TrimSuffix(url, "/"), err))
}

// refsDiff lists, in order, the keys whose values differ between want and got.
func refsDiff(want, got map[string]string) string {
	all := maps.Clone(want)
	maps.Copy(all, got)
	var out []string
	for _, k := range sortedKeys(all) {
		w, g := want[k], got[k]
		if w != g {
			out = append(out, fmt.Sprintf("%s: planned %s, got %s", k, shortOr(w, "(absent)"), shortOr(g, "(absent)")))
		}
	}
	return strings.Join(out, "; ")
}

// shortOr abbreviates a hex hash for messages, or returns def for "".
func shortOr(h, def string) string {
	if h == "" {
		return def
	}
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
