package resources

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
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
	_ resource.Resource                   = (*ReplicaResource)(nil)
	_ resource.ResourceWithConfigure      = (*ReplicaResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*ReplicaResource)(nil)
	_ resource.ResourceWithImportState    = (*ReplicaResource)(nil)
	_ resource.ResourceWithValidateConfig = (*ReplicaResource)(nil)
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

func (r *ReplicaResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_replica"
}

// Schema is one declaration per attribute with its documentation (the
// registry docs are generated from it): longer than 80 lines by nature.
func (r *ReplicaResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: replicaDescription,
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				MarkdownDescription: "The absolute path of the replica directory.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"path": schema.StringAttribute{
				MarkdownDescription: "Directory of the local repository: absent (the first apply creates it, with any " +
					"missing parents), an empty directory, or a zonegit repository. Anything else, such as a directory " +
					"holding other files, is an error at plan. Changing it forces a new replica.",
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
				MarkdownDescription: "Zones to replicate: lowercase names with the trailing dot (`example.com.`) or glob " +
					"patterns (`*.example.com.`). Omit to replicate every zone. A name without the trailing dot or in " +
					"upper case would match nothing and is an error.",
				ElementType: types.StringType,
				Optional:    true,
				Validators: []validator.List{
					listvalidator.SizeAtLeast(1),
					listvalidator.ValueStringsAre(zonePatternValidator{}),
				},
			},
			"branches": schema.ListAttribute{
				MarkdownDescription: "Branches to replicate in each selected zone: names (`main`), which always select " +
					"the branch of that exact name even when it holds glob characters, or glob patterns (`release-*`). " +
					"Omit to replicate every branch.",
				ElementType: types.StringType,
				Optional:    true,
				Validators: []validator.List{
					listvalidator.SizeAtLeast(1),
					listvalidator.ValueStringsAre(branchPatternValidator{}),
				},
			},
			"pins": schema.MapAttribute{
				MarkdownDescription: "Exact commits to replicate instead of the primary's tips, as " +
					"`\"<zone>/<branch>\" = \"<64-hex commit hash>\"` (for example " +
					"`\"example.com./main\" = \"3fa1...\"`). Pins win over the filters, can move a branch forward or " +
					"back, and need not be the primary's current tip, but the primary must have the commit: the plan " +
					"asks it (one request per pin that moves a branch).",
				ElementType: types.StringType,
				Optional:    true,
				Validators:  []validator.Map{pinsValidator{}},
			},
			"prune": schema.BoolAttribute{
				MarkdownDescription: "When `true`, the replica holds exactly the selection: the apply deletes local " +
					"branches the primary no longer has and local branches the selection no longer selects (filters " +
					"narrowed, a pin removed). Pinned branches are never pruned. Local tags in the selected zones that " +
					"the primary no longer lists are deleted too, but only when the primary offers the `tags` " +
					"extension (a plain v0 primary does not list tags). When `false` (the default), nothing is deleted.",
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(false),
			},
			"destroy_data": schema.BoolAttribute{
				MarkdownDescription: "When `true`, destroying the resource deletes the replica's repository files and " +
					"then its directory if that is left empty; if the directory holds anything else, destroy deletes " +
					"nothing and fails naming those files. When `false` (the default), destroy only removes the " +
					"replica from Terraform state and keeps its data.",
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
			"timeouts": timeouts.Block(ctx, timeouts.Opts{
				Create: true, Update: true,
				CreateDescription: "How long a create (the first pull) may take: a positive duration such as `30m` or `2h`. Defaults to `30m`.",
				UpdateDescription: "How long an update may take: a positive duration such as `10m`. Defaults to `30m`.",
			}),
		},
	}
}

// replicaDescription is the resource's documentation: what it does, and
// what it does to the directory it is given.
const replicaDescription = "A local zonegit repository (a secondary) replicated from a zonegit primary.\n\n" +
	"`terraform plan` asks the primary for its branch tips (one `GET /v0/refs`) and shows in `refs` exactly " +
	"the refs the apply will produce: the primary's tips within the `zones`/`branches` selection, with `pins` " +
	"applied and, with `prune`, branches the selection no longer has removed. The apply pulls exactly those " +
	"hashes, even if the primary moved after the plan, so the result always equals the plan. When nothing " +
	"changed on the primary the plan is empty.\n\n" +
	"Updates plan from the primary's refs as read during refresh, which the saved plan carries into the " +
	"apply; a create keeps the refs it saw too, so `terraform plan -refresh=false` needs no primary. A replica " +
	"being created has no refresh: if the primary moves between that plan and its apply, Terraform stops with " +
	"an inconsistent-plan error before anything is pulled; plan and apply again.\n\n" +
	"**Selection.** A branch is replicated when its zone matches an entry of `zones` and its name an entry of " +
	"`branches` (an omitted list matches everything), or when it is pinned. An entry matches the name equal to " +
	"it and, as a glob pattern (`*`, `?`, `[...]`, `\\` escapes), every name it matches: so `\"rel[1]\"` selects " +
	"the branch `rel[1]`, and as a glob also `rel1`; write `\"rel\\\\[1\\\\]\"` to select `rel[1]` alone. Tags are " +
	"replicated for the selected zones when the primary offers them.\n\n" +
	"**Leaving the selection.** With `prune = false` (the default) an apply never deletes a branch: a branch " +
	"that leaves the selection (deleted on the primary, filtered out by narrower `zones` or `branches`, or " +
	"unpinned while the filters do not select it) stays at its last commit, in the replica and in `refs`. With " +
	"`prune = true` the replica holds exactly the selection and each of those branches is deleted. Removing a " +
	"pin returns its branch to the filters: it follows the primary's tip if they select it, and otherwise is " +
	"kept (`prune = false`) or deleted (`prune = true`).\n\n" +
	"**The replica directory.** `path` must be absent, an empty directory, or a zonegit repository: a " +
	"directory holding only the files of a zonegit (Badger) repository, which are `*.sst`, `*.vlog`, `*.mem`, " +
	"`MANIFEST`, `KEYREGISTRY`, `DISCARD`, `LOCK`, `MANIFEST-REWRITE` and `REWRITE-KEYREGISTRY` while " +
	"they are rewritten, and `ZONEGIT-BULK-CLOSE` while a first pull's close merges its tables. Anything else there (`path = \"/\"`, a directory with a `notes.txt`) is an error at " +
	"plan naming the path and the other files, and nothing is written to it. (If files appear in the " +
	"directory of a replica that already exists, the plan warns, since an error there would block destroy " +
	"too, and the apply refuses.) Keep other files next to the replica, not inside it. The replica is an ordinary zonegit repository that a zonegit daemon can serve. " +
	"Only one writer may hold it at a time; a second apply or `zonegit-replicate pull` on the same path fails " +
	"fast.\n\n" +
	"**Destroy** forgets the replica and keeps its data, unless `destroy_data = true`: then it deletes the " +
	"repository files listed above and then the directory, if that is left empty. It never deletes anything " +
	"else: if the directory holds other files, destroy deletes nothing and fails naming them. A create that " +
	"fails removes what it made: the directory (and parents) it created, or only the repository files when " +
	"the directory existed empty; a repository that was already there is left as it was.\n\n" +
	"**Import** takes the directory: `terraform import zonegit_replica.x /var/lib/zonegit/secondary`. It " +
	"must be a zonegit repository with at least one branch. A replica does not record its configuration, so " +
	"import describes it as it is: `zones` are the zones of its branches and `branches` their names (escaped " +
	"when a name holds glob characters). The imported state, and a configuration written by " +
	"`terraform plan -generate-config-out`, then replicate what the replica holds, never more, and the first " +
	"plan is empty if the primary has not moved. `primary_url`, `pins`, `prune`, `destroy_data` and " +
	"`timeouts` cannot be read from a replica: where the configuration sets them, the first plan shows them " +
	"being recorded (and `refs` shows any branch that a pin or filter moves).\n\n" +
	"**A damaged replica** (a truncated or deleted file, a disk error) is an error at refresh and plan naming " +
	"the path; refresh and plan only ever read the replica and never repair or modify it. Run " +
	"`zonegit-replicate fsck --repo <path>` to see what is damaged. A replica is a copy of the primary: to " +
	"recover, delete the directory (`rm -r <path>`) and run `terraform apply`, which finds it gone and " +
	"creates it again from the primary."

func (r *ReplicaResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	data, diags := providerDataFrom(req.ProviderData)
	resp.Diagnostics.Append(diags...)
	if data != nil {
		r.data = data
	}
}

// ValidateConfig refuses timeouts that are not positive.
func (r *ReplicaResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	resp.Diagnostics.Append(validateTimeouts(ctx, req.Config, "create", "update")...)
}

// ModifyPlan computes the refs the apply will produce: the primary's tips
// (one GET /v0/refs) within the selection, pins applied, prunes removed, on
// top of the local branches. Equal to state means an empty plan. It refuses
// a path that is not absent, empty or a repository, and pins to commits the
// primary does not have.
//
// Longer than 80 lines on purpose: each early return is a plan Terraform
// must see (unknown values, a refused path, an unreachable primary).
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

	var dir string
	if !plan.Path.IsUnknown() {
		var err error
		if dir, err = absPath(plan.Path.ValueString()); err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("path"), "Invalid replica path", err.Error())
			return
		}
		d := checkReplicaDir(dir)
		if state != nil && state.ID.ValueString() == dir && d.HasError() {
			// The replica exists, and something else was put into its
			// directory. An error here would also block destroy (which
			// plans once first to refresh), so warn; the apply refuses.
			for _, e := range d.Errors() {
				resp.Diagnostics.AddAttributeWarning(path.Root("path"), e.Summary(), e.Detail()+
					" An apply will refuse to write to it; destroy with destroy_data = true deletes nothing while those files are there.")
			}
			d = nil
		}
		if resp.Diagnostics.Append(d...); resp.Diagnostics.HasError() {
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
	plan.ID = types.StringValue(dir)

	opts, pull, diags := r.pullSettings(ctx, &plan)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	// The refresh's (or the create's) record of the primary's refs, so
	// that this plan and the one Terraform makes again before applying
	// agree (see privateKeyPrimaryRefs); hosts that plan without
	// refreshing first ask the primary instead (see PlanReadsPrimaryRefs).
	var primary *replicate.RefsResponse
	if state != nil && !r.data.PlanReadsPrimaryRefs {
		primary = loadRefsRecord(ctx, req.Private, opts.PrimaryURL)
	}
	if primary == nil {
		var err error
		if primary, err = fetchRefs(ctx, opts); err != nil {
			resp.Diagnostics.Append(refsError(opts.PrimaryURL, err))
			return
		}
	}
	resp.Diagnostics.Append(resp.Private.SetKey(ctx, privateKeyPrimaryRefs, encodeRefsRecord(opts.PrimaryURL, primary))...)
	planned, diags := planRefs(ctx, opts, primary, dir, pull)
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

// checkReplicaDir refuses a path where a replica may not be created or
// kept: anything but nothing, an empty directory or a zonegit repository.
func checkReplicaDir(dir string) diag.Diagnostics {
	var diags diag.Diagnostics
	d, err := repo.InspectDir(dir)
	if err == nil {
		err = d.Check()
	}
	if err != nil {
		diags.AddAttributeError(path.Root("path"), "Path is not a zonegit repository", fmt.Sprintf(
			"%v. A replica's path must be absent, an empty directory, or a zonegit repository (only *.sst, *.vlog, "+
				"*.mem, MANIFEST, KEYREGISTRY, DISCARD, LOCK and ZONEGIT-BULK-CLOSE files); the provider writes into no other directory "+
				"and never deletes files it did not make. Choose another path, or move the other files out.", err))
	}
	return diags
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

	// What was at the path before, so a failed create removes only what it made.
	var made *madeDir
	if dir, err := absPath(plan.Path.ValueString()); err == nil {
		if made, err = recordMadeDir(dir); err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("path"), "Cannot inspect replica path",
				fmt.Sprintf("Inspecting %s failed: %v.", dir, err))
			return
		}
	}

	state, moved, diags := r.apply(ctx, &plan)
	resp.Diagnostics.Append(diags...)
	if state == nil || (resp.Diagnostics.HasError() && !moved) {
		// Nothing was replicated: the replica does not exist for
		// Terraform, so nothing of it may stay on disk either.
		if made != nil {
			if err := made.undo(); err != nil {
				resp.Diagnostics.AddAttributeError(path.Root("path"), "Cannot clean up failed replica", fmt.Sprintf(
					"The create failed, and removing what it made at %s failed too: %v. Remove it by hand.", made.dir, err))
			}
		}
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, state)...)

	// Keep a record of the primary's refs, as a refresh does, so that a
	// plan with -refresh=false right after the create needs no primary.
	opts, _, _ := r.pullSettings(ctx, state)
	if primary, err := fetchRefs(ctx, opts); err == nil {
		resp.Diagnostics.Append(resp.Private.SetKey(ctx, privateKeyPrimaryRefs, encodeRefsRecord(opts.PrimaryURL, primary))...)
	} else {
		tflog.Warn(ctx, "cannot record the primary's refs after create", map[string]any{"primary": opts.PrimaryURL, "error": err.Error()})
	}
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
	if errors.Is(err, repo.ErrNotRepository) {
		// The repository is gone and something else is there: like a
		// directory that is gone, the replica no longer exists. Failing
		// refresh instead would also block destroy.
		resp.Diagnostics.AddAttributeWarning(path.Root("path"), "Replica is gone", fmt.Sprintf(
			"%v. The replica no longer exists there, so it is removed from the state; a plan to create it again "+
				"fails until the path is absent, empty, or a zonegit repository.", err))
		resp.State.RemoveResource(ctx)
		resp.Diagnostics.Append(resp.Private.SetKey(ctx, privateKeyPrimaryRefs, nil)...)
		return
	}
	if err != nil {
		resp.Diagnostics.Append(readError(dir, err))
		return
	}
	refs, diags := types.MapValueFrom(ctx, types.StringType, replicate.RefsMap(local))
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

	resp.Diagnostics.Append(resp.Private.SetKey(ctx, privateKeyPrimaryRefs, r.fetchRefsRecordForPlan(ctx, &state))...)
}

// fetchRefsRecordForPlan asks the primary for its refs (a network call,
// made during refresh) and returns the record ModifyPlan will plan from
// (see privateKeyPrimaryRefs), or nil. A primary that cannot be reached is
// not a refresh error: the plan asks again and reports it.
func (r *ReplicaResource) fetchRefsRecordForPlan(ctx context.Context, state *replicaResourceModel) []byte {
	if r.data == nil {
		return nil
	}
	opts := r.data.Client
	if !state.PrimaryURL.IsNull() {
		opts.PrimaryURL = state.PrimaryURL.ValueString()
	}
	if opts.PrimaryURL == "" {
		return nil
	}
	primary, err := fetchRefs(ctx, opts)
	if err != nil {
		tflog.Warn(ctx, "cannot record the primary's refs during refresh", map[string]any{"primary": opts.PrimaryURL, "error": err.Error()})
		return nil
	}
	return encodeRefsRecord(opts.PrimaryURL, primary)
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
	// Only the repository's own files, and the directory if that empties
	// it; the lock it takes proves no other writer is using the replica.
	if err := repo.RemoveRepository(dir, false); err != nil {
		switch {
		case errors.Is(err, repo.ErrLocked):
			resp.Diagnostics.Append(openError(dir, err))
		case errors.Is(err, repo.ErrNotRepository):
			resp.Diagnostics.AddError("Replica directory holds other files", fmt.Sprintf(
				"%v. Destroy deletes only the files of a zonegit repository and deleted nothing. Move those files "+
					"out and destroy again, or set destroy_data = false to keep the directory.", err))
		default:
			resp.Diagnostics.AddError("Cannot delete replica", fmt.Sprintf(
				"Removing the replica at %s failed: %v. Remove it by hand, or set destroy_data = false to keep it.", dir, err))
		}
		return
	}
	tflog.Info(ctx, "deleted replica", map[string]any{"path": dir})
}

// ImportState takes the replica's path as its ID:
// terraform import zonegit_replica.x /var/lib/zonegit/secondary
//
// A replica does not record its configuration, so import describes what it
// holds: zones are the zones of its branches and branches their names, so
// the imported state (and a configuration generated from it) neither widens
// nor narrows the replica.
func (r *ReplicaResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	dir, err := absPath(req.ID)
	if err != nil {
		resp.Diagnostics.AddError("Invalid import ID",
			fmt.Sprintf("The import ID must be the replica's directory, for example /var/lib/zonegit/secondary: %v.", err))
		return
	}
	d, err := repo.InspectDir(dir)
	if err == nil {
		err = d.Check()
	}
	switch {
	case err != nil:
		resp.Diagnostics.AddError("Cannot import replica", fmt.Sprintf(
			"%v. Only a zonegit repository can be imported as a zonegit_replica.", err))
		return
	case !d.Exists:
		resp.Diagnostics.AddError("Cannot import replica", fmt.Sprintf(
			"Nothing is at %s. Import an existing zonegit repository, or let terraform apply create the replica.", dir))
		return
	case !d.IsRepository():
		resp.Diagnostics.AddError("Cannot import replica", fmt.Sprintf(
			"%s is an empty directory, not a zonegit repository. Let terraform apply create the replica there "+
				"instead of importing it.", dir))
		return
	}
	local, _, err := readLocalRefs(dir)
	if err != nil {
		resp.Diagnostics.Append(readError(dir, err))
		return
	}
	if len(local) == 0 {
		resp.Diagnostics.AddError("Cannot import replica", fmt.Sprintf(
			"The zonegit repository at %s holds no branches, so there is nothing to describe its zones and branches "+
				"by. Remove the import: a zonegit_replica with this path takes the repository over on create.", dir))
		return
	}
	zones, branches := describeRefs(local)
	zl, diags := types.ListValueFrom(ctx, types.StringType, zones)
	resp.Diagnostics.Append(diags...)
	bl, diags := types.ListValueFrom(ctx, types.StringType, branches)
	resp.Diagnostics.Append(diags...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("path"), req.ID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), dir)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("zones"), zl)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("branches"), bl)...)
	tflog.Info(ctx, "imported replica", map[string]any{"path": dir, "zones": zones, "branches": branches})
}

// describeRefs returns the sorted zones and (quoted) branch names of refs:
// the narrowest zones/branches filters that select all of them.
func describeRefs(refs []repo.Ref) (zones, branches []string) {
	zs, bs := map[string]bool{}, map[string]bool{}
	for _, r := range refs {
		zs[r.Zone] = true
		bs[replicate.QuoteName(r.Name)] = true
	}
	return slices.Sorted(maps.Keys(zs)), slices.Sorted(maps.Keys(bs))
}

// pullSettings resolves the client options (provider settings, the
// resource's primary_url) and the selection of a configuration.
func (r *ReplicaResource) pullSettings(ctx context.Context, m *replicaResourceModel) (replicate.ClientOptions, replicate.PullOptions, diag.Diagnostics) {
	var diags diag.Diagnostics
	var pull replicate.PullOptions
	if r.data == nil {
		diags.AddError("Provider not configured",
			"The zonegit provider was not configured before the replica was used. This is a bug in the zonegit provider; please report it.")
		return replicate.ClientOptions{}, pull, diags
	}
	opts := r.data.Client
	if !m.PrimaryURL.IsNull() {
		opts.PrimaryURL = m.PrimaryURL.ValueString()
	}
	if opts.PrimaryURL == "" {
		diags.AddAttributeError(path.Root("primary_url"), "Missing primary URL",
			"The replica does not know which primary to pull from. Set primary_url on this resource, or primary_url "+
				"in the provider configuration (or the ZONEGIT_PRIMARY_URL environment variable).")
		return opts, pull, diags
	}
	diags.Append(m.Zones.ElementsAs(ctx, &pull.Zones, false)...)
	diags.Append(m.Branches.ElementsAs(ctx, &pull.Branches, false)...)
	if !m.Pins.IsNull() {
		diags.Append(m.Pins.ElementsAs(ctx, &pull.Pins, false)...)
	}
	pull.Prune = m.Prune.ValueBool()
	return opts, pull, diags
}

// planRefs returns the refs the local repository at dir will have once the
// selection is applied, given the primary's refs (replicate's PlanRefs,
// which the secondary daemon's plan uses too): with prune the replica keeps
// exactly its selection, and every pin that would move its branch must be
// on the primary.
func planRefs(ctx context.Context, opts replicate.ClientOptions, primary *replicate.RefsResponse, dir string, pull replicate.PullOptions) (planned map[string]string, diags diag.Diagnostics) {
	local, _, err := readLocalRefs(dir)
	if err != nil {
		diags.Append(readError(dir, err))
		return nil, diags
	}
	ctx, opts = withClientLogging(ctx, opts)
	client, err := replicate.NewClientWithOptions(nil, opts)
	if err != nil {
		diags.AddError("Invalid replication client settings",
			fmt.Sprintf("Cannot build a client for primary %s: %v. Check primary_url and the TLS settings of the provider.", opts.PrimaryURL, err))
		return nil, diags
	}
	p, err := client.PlanRefs(ctx, primary, local, pull)
	diags.Append(planDiagnostics(p, err, opts.PrimaryURL, "the replica at "+dir)...)
	if diags.HasError() {
		return nil, diags
	}
	tflog.Info(ctx, "planned replica refs", map[string]any{
		"path": dir, "primary": opts.PrimaryURL, "primary_branches": len(primary.Branches),
		"local_branches": len(local), "targets": p.Targets, "prune": p.Pruned,
	})
	return p.Refs, diags
}

// planDiagnostics turns what replicate's PlanRefs (or PlanRefsOffline)
// found wrong into diagnostics: err (an invalid selection or pin), the
// primary's refs that cannot be stored, and pins the primary does not
// have. what names the replica ("the replica at /var/lib/x").
func planDiagnostics(p *replicate.RefsPlan, err error, primaryURL, what string) diag.Diagnostics {
	var diags diag.Diagnostics
	if err != nil {
		diags.AddError("Cannot plan replica",
			fmt.Sprintf("Selecting branches of primary %s for %s failed: %v. Check zones, branches and pins.", primaryURL, what, err))
		return diags
	}
	for _, e := range p.Invalid {
		kind := "Branch"
		if e.Tag {
			kind = "Tag"
		}
		diags.AddError("Primary offers an invalid ref", fmt.Sprintf(
			"%s %q of zone %q (primary %s): %v. %s cannot store it. Fix it on the primary, or leave it "+
				"out of the zones and branches filters.", kind, e.Name, e.Zone, primaryURL, e.Err, upperFirst(what)))
	}
	for _, e := range p.Pins {
		if errors.Is(e.Err, repo.ErrNotFound) {
			diags.AddAttributeError(path.Root("pins").AtMapKey(e.Key), "Pinned commit not on the primary", fmt.Sprintf(
				"Pin %q = %s: primary %s does not have that commit, so the apply could not pull it. Check the hash "+
					"(zonegit_refs lists the primary's tips), or remove the pin.", e.Key, e.Hash, primaryURL))
		} else {
			diags.AddAttributeError(path.Root("pins").AtMapKey(e.Key), "Cannot check pinned commit", fmt.Sprintf(
				"Pin %q = %s: asking primary %s for the commit failed: %v.", e.Key, e.Hash, primaryURL, e.Err))
		}
	}
	return diags
}

// upperFirst capitalizes the first letter of a message fragment.
func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// apply makes the replica's branches exactly the planned refs and returns
// the new state. state is nil when the replica could not be opened
// (nothing changed); moved says whether any ref moved.
//
// Longer than 80 lines on purpose: open, pull, verify against the plan and
// build the state are one sequence whose failures each leave a different
// state behind; each step is commented where it happens.
func (r *ReplicaResource) apply(ctx context.Context, plan *replicaResourceModel) (state *replicaResourceModel, moved bool, diags diag.Diagnostics) {
	dir, err := absPath(plan.Path.ValueString())
	if err != nil {
		diags.AddAttributeError(path.Root("path"), "Invalid replica path", err.Error())
		return nil, false, diags
	}
	opts, pull, d := r.pullSettings(ctx, plan)
	diags.Append(d...)
	if diags.HasError() {
		return nil, false, diags
	}
	// Again at apply: the plan may not have known the path, and the
	// directory may have changed since.
	if diags.Append(checkReplicaDir(dir)...); diags.HasError() {
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
		planned, d = planRefs(ctx, opts, primary, dir, pull)
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
	// Bulk: an apply opens the replica for one pull and closes it, so the
	// first pull into a new directory is one bulk load, as for the CLI (see
	// repo.Options.Bulk); later applies find tables and write as usual.
	local, err := repo.Open(dir, repo.Options{Bulk: true})
	if err != nil {
		diags.Append(openError(dir, err))
		return nil, false, diags
	}
	defer func() {
		// The pull has synced everything it wrote and moved its refs before
		// this; Close flushes Badger's memtable and, after a first pull, merges
		// its tables (repo.Options.Bulk). A failure there leaves a sound
		// replica that the next open finishes, but the user hears of it.
		if err := local.Close(); err != nil {
			diags.AddWarning("Replica was not closed cleanly",
				fmt.Sprintf("Closing the replica at %s failed after the pull: %v. Its data and refs were already synced; the next open finishes the work.", dir, err))
		}
	}()
	before, err := local.Branches("")
	if err != nil {
		diags.AddError("Cannot read replica", fmt.Sprintf("Listing the branches of the replica at %s failed: %v.", dir, err))
		return nil, false, diags
	}

	// Pin every planned branch to its planned hash, and (with prune)
	// delete every other local branch: the plan has decided everything,
	// so a primary that moved (or grew a branch) after the plan changes
	// nothing. Tags follow the zone filter.
	pull = pull.Exactly(planned)

	ctx, opts = withClientLogging(ctx, opts)
	client, err := replicate.NewClientWithOptions(local, opts)
	if err != nil {
		diags.AddError("Invalid replication client settings",
			fmt.Sprintf("Cannot build a client for primary %s: %v. Check primary_url and the TLS settings of the provider.", opts.PrimaryURL, err))
		return nil, false, diags
	}
	tflog.Info(ctx, "pulling replica", map[string]any{"path": dir, "primary": opts.PrimaryURL, "pinned_branches": len(pull.Pins), "prune": pull.Prune})
	res, pullErr := client.PullWith(ctx, pull)
	logRequestSummary(opts)
	failed := 0
	if res != nil {
		for _, b := range res.Branches {
			if b.Err == nil {
				continue
			}
			failed++
			diags.Append(branchPullError("replica "+dir, opts.PrimaryURL, b.Zone, b.Name, b.Err.Error(), replicate.ShortHash(b.Old, "(absent)")))
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
	got := replicate.RefsMap(after)
	moved = !maps.Equal(got, replicate.RefsMap(before))
	if !diags.HasError() && !maps.Equal(got, planned) {
		diags.AddError("Replica differs from the plan", fmt.Sprintf(
			"After pulling from primary %s, the replica at %s has refs that the plan did not show: %s. Another "+
				"process changed the replica or the primary during the apply. Run plan and apply again.",
			opts.PrimaryURL, dir, replicate.RefsDiff(planned, got, "planned", "(absent)")))
	}

	state = new(replicaResourceModel)
	*state = *plan
	state.ID = types.StringValue(dir)
	refs, d := types.MapValueFrom(ctx, types.StringType, got)
	diags.Append(d...)
	state.Refs = refs
	if plan.LastPull.IsUnknown() || moved {
		var objects, bytes int64
		var took time.Duration
		if res != nil {
			objects, bytes, took = int64(res.Objects), res.Bytes, res.Duration
		}
		lp, d := lastPullValue(objects, bytes, took.Milliseconds(), opts.PrimaryURL)
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
		fmt.Sprintf("Opening the replica at %s for writing failed: %v. Check that it is writable. If it is "+
			"damaged, `zonegit-replicate fsck --repo %s` says what is wrong; to recover, delete the directory "+
			"and run terraform apply again.", dir, err, dir))
}

// readError explains a failure to read the replica's branches, which
// refresh, plan and import do read-only.
func readError(dir string, err error) diag.Diagnostic {
	if errors.Is(err, repo.ErrLocked) {
		return openError(dir, err)
	}
	if errors.Is(err, repo.ErrNotRepository) {
		return diag.NewAttributeErrorDiagnostic(path.Root("path"), "Path is not a zonegit repository", fmt.Sprintf(
			"%v. The replica's directory no longer holds a zonegit repository. Choose another path, or move "+
				"the other files out and delete the directory to have apply create the replica again.", err))
	}
	if errors.Is(err, repo.ErrDamaged) {
		// The error names the damaged file and the recovery; guessing at
		// other causes would only blur that.
		return diag.NewAttributeErrorDiagnostic(path.Root("path"), "Replica is damaged", fmt.Sprintf(
			"Reading the branches of the replica at %s failed: %v. A replica is a copy of the primary: after "+
				"deleting the directory, terraform apply creates it again.", dir, err))
	}
	return diag.NewAttributeErrorDiagnostic(path.Root("path"), "Cannot read replica", fmt.Sprintf(
		"Reading the branches of the replica at %s failed: %v. If another process (an apply or zonegit-replicate "+
			"pull) is writing to it, wait for it to finish and try again. Otherwise the replica may be damaged: "+
			"`zonegit-replicate fsck --repo %s` says what is wrong; to recover, delete the directory and run "+
			"terraform apply, which creates it again from the primary.", dir, err, dir))
}

// refsError explains a failure to read a primary's refs.
func refsError(url string, err error) diag.Diagnostic {
	return diag.NewErrorDiagnostic("Cannot read the primary's refs",
		fmt.Sprintf("GET %s/v0/refs failed: %v. Check that the primary is running and reachable at that URL, and "+
			"the provider's token, headers and TLS settings.", strings.TrimSuffix(url, "/"), err))
}
