package resources

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/resourcevalidator"
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
	"github.com/zonegit/terraform-provider-zonegit/secondary"
)

var (
	_ resource.Resource                     = (*SecondaryResource)(nil)
	_ resource.ResourceWithConfigure        = (*SecondaryResource)(nil)
	_ resource.ResourceWithModifyPlan       = (*SecondaryResource)(nil)
	_ resource.ResourceWithImportState      = (*SecondaryResource)(nil)
	_ resource.ResourceWithValidateConfig   = (*SecondaryResource)(nil)
	_ resource.ResourceWithConfigValidators = (*SecondaryResource)(nil)
)

// defaultDeleteTimeout bounds clearing a daemon's desired state, which
// waits for a pull the daemon may be running.
const defaultDeleteTimeout = 5 * time.Minute

// NewSecondaryResource returns the zonegit_secondary resource.
func NewSecondaryResource() resource.Resource {
	return &SecondaryResource{}
}

// SecondaryResource is one secondary daemon (`zonegit-replicate secondary`)
// driven through its control API: the plan shows the refs its apply will
// produce, and the apply makes the daemon pull exactly those hashes. It is
// zonegit_replica for a replica on another host, so the selection, the
// plan and the last_pull are zonegit_replica's.
type SecondaryResource struct {
	data *ProviderData
}

// secondaryResourceModel is the resource's configuration and state.
type secondaryResourceModel struct {
	ID            types.String   `tfsdk:"id"`
	URL           types.String   `tfsdk:"url"`
	ControlToken  types.String   `tfsdk:"control_token"`
	CACertPEM     types.String   `tfsdk:"ca_cert_pem"`
	ClientCertPEM types.String   `tfsdk:"client_cert_pem"`
	ClientKeyPEM  types.String   `tfsdk:"client_key_pem"`
	Zones         types.List     `tfsdk:"zones"`
	Branches      types.List     `tfsdk:"branches"`
	Pins          types.Map      `tfsdk:"pins"`
	Prune         types.Bool     `tfsdk:"prune"`
	Follow        types.Bool     `tfsdk:"follow"`
	Refs          types.Map      `tfsdk:"refs"`
	LastPull      types.Object   `tfsdk:"last_pull"`
	Timeouts      timeouts.Value `tfsdk:"timeouts"`
}

func (r *SecondaryResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_secondary"
}

func (r *SecondaryResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	var replica resource.SchemaResponse
	(&ReplicaResource{}).Schema(ctx, resource.SchemaRequest{}, &replica)
	// The selection and the computed attributes mean what they mean for
	// zonegit_replica, validators included.
	shared := func(name string) schema.Attribute { return replica.Schema.Attributes[name] }

	resp.Schema = schema.Schema{
		MarkdownDescription: secondaryDescription,
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				MarkdownDescription: "The daemon's URL, as `url`.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"url": schema.StringAttribute{
				MarkdownDescription: "Base URL of the secondary daemon (`http://` or `https://`, for example " +
					"`https://ns1.example:9355`): the address of its `--listen`, which serves both the replication " +
					"protocol and the control API. Changing it forces a new resource (the old daemon's desired state is " +
					"cleared, the new one's set).",
				Required:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
				Validators:    []validator.String{secondaryURLValidator()},
			},
			"control_token": schema.StringAttribute{
				MarkdownDescription: "The daemon's control token (its `--control-token-file`). Defaults to the " +
					"provider's `secondary_token` (or the `ZONEGIT_SECONDARY_TOKEN` / `ZONEGIT_SECONDARY_TOKEN_FILE` " +
					"environment variables). Set here it is stored in state, marked sensitive; prefer the provider " +
					"setting, which never is.",
				Optional:   true,
				Sensitive:  true,
				Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"ca_cert_pem": schema.StringAttribute{
				MarkdownDescription: "PEM-encoded certificate authorities trusted, in addition to the system's, when " +
					"verifying an `https://` daemon. Replaces the provider's `ca_cert_pem` (and `insecure`) for this " +
					"daemon; when unset, the provider's TLS settings apply.",
				Optional:   true,
				Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"client_cert_pem": schema.StringAttribute{
				MarkdownDescription: "PEM-encoded client certificate for mutual TLS with the daemon, with " +
					"`client_key_pem`. Replaces the provider's client certificate for this daemon.",
				Optional:   true,
				Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"client_key_pem": schema.StringAttribute{
				MarkdownDescription: "PEM-encoded private key of `client_cert_pem`. Stored in state, marked sensitive.",
				Optional:            true,
				Sensitive:           true,
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"zones":    withDescription(shared("zones"), "Zones the daemon replicates: lowercase names with the trailing dot (`example.com.`) or glob patterns (`*.example.com.`). Omit to replicate every zone, as for a replica resource."),
			"branches": withDescription(shared("branches"), "Branches to replicate in each selected zone: names (`main`) or glob patterns (`release-*`), as for a replica resource. Omit to replicate every branch."),
			"pins": withDescription(shared("pins"), "Exact commits to hold instead of the primary's tips, as "+
				"`\"<zone>/<branch>\" = \"<64-hex commit hash>\"`, as for a replica resource. The daemon's primary must "+
				"have the commit: the plan asks the daemon, which asks its primary."),
			"prune": shared("prune"),
			"follow": schema.BoolAttribute{
				MarkdownDescription: "What the daemon does after the apply. `false` (the default): it holds exactly " +
					"the applied refs until the next apply. `true`: it keeps following its primary every `--follow` " +
					"interval, by this selection and these pins (pinned branches stay put), so the refs move between " +
					"applies and the next plan shows them moved. Needs a daemon started with `--follow`; the plan " +
					"fails naming the daemon otherwise.",
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(false),
			},
			"refs": schema.MapAttribute{
				MarkdownDescription: "Branches the daemon holds, as `\"<zone>/<branch>\" = \"<commit hash>\"`. " +
					"In a plan, the refs the apply will produce.",
				ElementType: types.StringType,
				Computed:    true,
			},
			"last_pull": withDescription(shared("last_pull"), "Statistics of the last apply that moved refs, as the "+
				"daemon reported them (pulls of a following daemon between applies are not recorded). Unchanged "+
				"while the refs do not change."),
		},
		Blocks: map[string]schema.Block{
			"timeouts": timeouts.Block(ctx, timeouts.Opts{
				Create: true, Update: true, Delete: true,
				CreateDescription: "How long a create (the daemon's first pull) may take: a positive duration such as `30m`. Defaults to `30m`.",
				UpdateDescription: "How long an update (the daemon's pull) may take: a positive duration such as `10m`. Defaults to `30m`.",
				DeleteDescription: "How long clearing the desired state may take (it waits for a pull the daemon is running). Defaults to `5m`.",
			}),
		},
	}
}

// withDescription returns a copy of a shared attribute with the
// description of this resource.
func withDescription(a schema.Attribute, desc string) schema.Attribute {
	switch a := a.(type) {
	case schema.ListAttribute:
		a.MarkdownDescription = desc
		return a
	case schema.MapAttribute:
		a.MarkdownDescription = desc
		return a
	case schema.SingleNestedAttribute:
		a.MarkdownDescription = desc
		return a
	}
	panic(fmt.Sprintf("withDescription: unexpected attribute type %T", a))
}

// secondaryDescription is the resource's documentation.
const secondaryDescription = "A secondary daemon (`zonegit-replicate secondary`) on another host, moved to exactly " +
	"the reviewed commits by its control API. Use `for_each` over a fleet of them: one apply moves every " +
	"secondary, and the plan shows each one's move.\n\n" +
	"The daemon owns its replica directory and pulls from the primary it was started with; Terraform never " +
	"talks to the primary. `terraform plan` asks each daemon what its primary offers and shows in `refs` " +
	"exactly the refs the apply will produce, with the selection, `pins` and `prune` of `zonegit_replica`. The " +
	"apply sends the planned refs to the daemon, which pulls exactly those hashes (even if the primary moved " +
	"after the plan), stores the desired state, and answers with the result; a result other than the plan is " +
	"an error naming each differing ref, and a branch the daemon could not pull is an error naming the zone " +
	"and branch.\n\n" +
	"Updates plan from what the daemon's primary offered during refresh, kept in the plan like " +
	"`zonegit_replica` keeps its record of the primary's refs, so a primary that moves between plan and apply changes nothing. A " +
	"secondary being created has no refresh: if the primary moves between that plan and its apply, Terraform " +
	"stops with an inconsistent-plan error before anything is pulled; plan and apply again.\n\n" +
	"**A daemon that cannot be reached** is an error naming its URL on its own instance: with `for_each`, " +
	"every other secondary still plans, and one that fails during apply leaves the others applied.\n\n" +
	"**Drift.** Refresh reads the daemon's refs and desired state (`zones`, `branches`, `pins`, `prune`, " +
	"`follow`), so a daemon moved or reconfigured behind Terraform's back shows in the next plan, which puts " +
	"it back. A daemon with no desired state at all (cleared, or its state file lost) is gone for Terraform: " +
	"it is removed from the state and the next plan creates it again, which keeps its data and pulls only what " +
	"differs.\n\n" +
	"**`follow`.** With `follow = false` the daemon holds the applied refs. With `follow = true` it keeps " +
	"following its primary between applies, so `refs` moves by itself and the next plan shows where the " +
	"primary is now; pinned branches stay at their pins either way.\n\n" +
	"**Destroy** clears the daemon's desired state and stops it following; the replica's data stays, and the " +
	"daemon keeps serving it.\n\n" +
	"**Import** takes the daemon's URL: `terraform import zonegit_secondary.ns1 https://ns1.example:9355`. " +
	"The import reads the daemon with the provider's `secondary_token` and TLS settings (an import has no " +
	"resource configuration), and the daemon must have a desired state, which becomes the imported " +
	"`zones`, `branches`, `pins`, `prune` and `follow`."

func (r *SecondaryResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	data, diags := providerDataFrom(req.ProviderData)
	resp.Diagnostics.Append(diags...)
	if data != nil {
		r.data = data
	}
}

func (r *SecondaryResource) ConfigValidators(_ context.Context) []resource.ConfigValidator {
	return []resource.ConfigValidator{
		resourcevalidator.RequiredTogether(path.MatchRoot("client_cert_pem"), path.MatchRoot("client_key_pem")),
	}
}

// ValidateConfig refuses timeouts that are not positive.
func (r *SecondaryResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	resp.Diagnostics.Append(validateTimeouts(ctx, req.Config, "create", "update", "delete")...)
}

// control builds the control client of the daemon m names: the resource's
// token and TLS settings, or else the provider's. timeout, when positive,
// is the request timeout (an apply's answer waits for the whole pull).
func (r *SecondaryResource) control(ctx context.Context, m *secondaryResourceModel, timeout time.Duration) (context.Context, *secondary.ControlClient, diag.Diagnostics) {
	var diags diag.Diagnostics
	if r.data == nil {
		diags.AddError("Provider not configured",
			"The zonegit provider was not configured before the secondary was used. This is a bug in the zonegit provider; please report it.")
		return ctx, nil, diags
	}
	url := m.URL.ValueString()
	if url == "" {
		url = m.ID.ValueString()
	}
	p := r.data.Client
	opts := secondary.ControlOptions{
		Token:          r.data.SecondaryToken,
		CACertPEM:      p.CACertPEM,
		ClientCertPEM:  p.ClientCertPEM,
		ClientKeyPEM:   p.ClientKeyPEM,
		Insecure:       p.Insecure,
		RequestTimeout: p.RequestTimeout,
		RetryAttempts:  p.RetryAttempts,
		RetryMinDelay:  p.RetryMinDelay,
		RetryMaxDelay:  p.RetryMaxDelay,
		UserAgent:      p.UserAgent,
	}
	if !m.ControlToken.IsNull() {
		opts.Token = m.ControlToken.ValueString()
	}
	if !m.CACertPEM.IsNull() {
		opts.CACertPEM, opts.Insecure = m.CACertPEM.ValueString(), false
	}
	if !m.ClientCertPEM.IsNull() {
		opts.ClientCertPEM, opts.ClientKeyPEM = m.ClientCertPEM.ValueString(), m.ClientKeyPEM.ValueString()
	}
	if timeout > 0 {
		opts.RequestTimeout = timeout
	}
	if opts.Token == "" {
		diags.AddAttributeError(path.Root("control_token"), "Missing control token", fmt.Sprintf(
			"No control token for the secondary daemon at %s. Set control_token on this resource, or "+
				"secondary_token in the provider configuration (or the ZONEGIT_SECONDARY_TOKEN or "+
				"ZONEGIT_SECONDARY_TOKEN_FILE environment variable).", url))
		return ctx, nil, diags
	}
	ctx, opts = withControlLogging(ctx, opts)
	c, err := secondary.NewControlClient(url, opts)
	if err != nil {
		diags.AddError("Invalid secondary client settings", fmt.Sprintf(
			"Cannot build a client for the secondary daemon at %s: %v. Check url and the TLS settings (ca_cert_pem, "+
				"client_cert_pem, client_key_pem) of the resource or the provider.", url, err))
		return ctx, nil, diags
	}
	return ctx, c, diags
}

// tokenSource says where the control token of m comes from, for messages.
func (r *SecondaryResource) tokenSource(m *secondaryResourceModel) string {
	if !m.ControlToken.IsNull() || r.data == nil {
		return "control_token"
	}
	return "the provider's " + r.data.SecondaryTokenFrom
}

// controlError explains a failed control request to the daemon at url:
// doing is what was asked ("planning", "applying"), for the summary.
func (r *SecondaryResource) controlError(m *secondaryResourceModel, doing string, err error) diag.Diagnostic {
	url := m.URL.ValueString()
	if url == "" {
		url = m.ID.ValueString()
	}
	if errors.Is(err, secondary.ErrNotDaemon) {
		return diag.NewAttributeErrorDiagnostic(path.Root("url"), "Not a secondary daemon", fmt.Sprintf(
			"%s the secondary daemon at %s: %v. The url must be the --listen address of `zonegit-replicate secondary` "+
				"(not a primary's `serve` address, nor a proxy that does not pass %s through).", doing, url, err, secondary.ControlPath))
	}
	var ce *secondary.ControlError
	if !errors.As(err, &ce) {
		return diag.NewErrorDiagnostic("Cannot reach secondary daemon", fmt.Sprintf(
			"%s the secondary daemon at %s failed: %v. Check that `zonegit-replicate secondary` is running and "+
				"reachable at that URL, and the TLS settings. Other secondaries are not affected.", doing, url, err))
	}
	switch ce.Status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return diag.NewAttributeErrorDiagnostic(path.Root("control_token"), "Secondary daemon refused the control token", fmt.Sprintf(
			"The secondary daemon at %s refused the control token from %s: %v. Use the token in the daemon's "+
				"--control-token-file (not the primary's read token).", url, r.tokenSource(m), err))
	case http.StatusConflict:
		return diag.NewAttributeErrorDiagnostic(path.Root("follow"), "Secondary daemon cannot follow", fmt.Sprintf(
			"%s the secondary daemon at %s: %v. Start the daemon with --follow DURATION, or set follow = false.", doing, url, err))
	case http.StatusUnprocessableEntity:
		return diag.NewAttributeErrorDiagnostic(path.Root("pins"), "Pinned commit not on the primary", fmt.Sprintf(
			"%s the secondary daemon at %s: %v. Check the hash (zonegit_refs lists the primary's tips), or remove the pin.", doing, url, err))
	case http.StatusBadRequest:
		return diag.NewErrorDiagnostic("Secondary daemon refused the desired state", fmt.Sprintf(
			"%s the secondary daemon at %s: %v. Check zones, branches and pins.", doing, url, err))
	case http.StatusRequestEntityTooLarge:
		return diag.NewErrorDiagnostic("Desired state too large for the secondary daemon", fmt.Sprintf(
			"%s the secondary daemon at %s: %v. Use fewer pins, or patterns in zones and branches.", doing, url, err))
	case http.StatusServiceUnavailable:
		return diag.NewErrorDiagnostic("Secondary daemon busy", fmt.Sprintf(
			"%s the secondary daemon at %s: %v. The daemon runs one pull at a time (another apply, or its "+
				"following) or is shutting down; nothing was changed by this request. Run apply again, or raise the "+
				"timeouts.", doing, url, err))
	case http.StatusInternalServerError:
		return diag.NewErrorDiagnostic("Secondary daemon failed", fmt.Sprintf(
			"%s the secondary daemon at %s: %v. This is a problem on the daemon's host (its log says more); "+
				"fix it there and run apply again.", doing, url, err))
	case http.StatusBadGateway:
		return diag.NewErrorDiagnostic("Secondary daemon cannot reach its primary", fmt.Sprintf(
			"%s the secondary daemon at %s: %v. The daemon pulls from the primary it was started with "+
				"(--primary); check that it can reach it. Nothing was changed on the daemon.", doing, url, err))
	}
	return diag.NewErrorDiagnostic("Secondary daemon request failed", fmt.Sprintf(
		"%s the secondary daemon at %s: %v.", doing, url, err))
}

// desired is the desired state a configuration asks for, and the same as
// pull options for planning.
func desired(ctx context.Context, m *secondaryResourceModel) (secondary.Desired, replicate.PullOptions, diag.Diagnostics) {
	var diags diag.Diagnostics
	var d secondary.Desired
	diags.Append(m.Zones.ElementsAs(ctx, &d.Zones, false)...)
	diags.Append(m.Branches.ElementsAs(ctx, &d.Branches, false)...)
	if !m.Pins.IsNull() {
		diags.Append(m.Pins.ElementsAs(ctx, &d.Pins, false)...)
	}
	d.Prune = m.Prune.ValueBool()
	d.Follow = m.Follow.ValueBool()
	return d, replicate.PullOptions{Zones: d.Zones, Branches: d.Branches, Pins: d.Pins, Prune: d.Prune}, diags
}

// refsList turns a refs map back into branches, for planning.
func refsList(m map[string]string) ([]repo.Ref, error) {
	out := make([]repo.Ref, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		zone, name, ok := repo.SplitRefPath(k)
		if !ok {
			return nil, fmt.Errorf("ref %q is not <zone>/<branch>", k)
		}
		h, err := repo.ParseHash(m[k])
		if err != nil {
			return nil, fmt.Errorf("ref %q: %w", k, err)
		}
		out = append(out, repo.Ref{Zone: zone, Name: name, Hash: h})
	}
	return out, nil
}

// ModifyPlan computes the refs the apply will produce. It always asks the
// daemon (POST /plan), which checks the desired state (pins its primary
// must have, follow on a daemon that can follow) and proves the daemon is
// reachable. For an existing secondary the refs are computed, with
// zonegit_replica's planning (replicate.PlanRefsOffline), from the daemon's refs and its primary's
// offer as read during refresh, so that this plan and the one Terraform
// makes again before applying agree even if the primary moved in between
// (see privateKeyPrimaryRefs); a create uses the daemon's answer.
func (r *SecondaryResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return // destroy
	}
	var plan secondaryResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	var state *secondaryResourceModel
	if !req.State.Raw.IsNull() {
		state = new(secondaryResourceModel)
		resp.Diagnostics.Append(req.State.Get(ctx, state)...)
		if resp.Diagnostics.HasError() {
			return
		}
	}
	if !plan.URL.IsUnknown() {
		plan.ID = plan.URL
	}
	if plan.URL.IsUnknown() || plan.ControlToken.IsUnknown() || plan.CACertPEM.IsUnknown() ||
		plan.ClientCertPEM.IsUnknown() || plan.ClientKeyPEM.IsUnknown() || plan.Zones.IsUnknown() ||
		plan.Branches.IsUnknown() || plan.Pins.IsUnknown() || plan.Prune.IsUnknown() ||
		plan.Follow.IsUnknown() || r.data == nil {
		// Known only at apply time: the apply computes the refs then.
		plan.Refs = types.MapUnknown(types.StringType)
		plan.LastPull = types.ObjectUnknown(lastPullAttrTypes)
		resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
		return
	}
	url := plan.URL.ValueString()
	want, pull, diags := desired(ctx, &plan)
	resp.Diagnostics.Append(diags...)
	ctx, client, diags := r.control(ctx, &plan, 0)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	answer, err := client.Plan(ctx, want)
	if err != nil {
		resp.Diagnostics.Append(r.controlError(&plan, "Planning", err))
		return
	}
	planned := answer.Refs
	// Hosts that plan without refreshing first (Pulumi) take the daemon's
	// answer as it is, as zonegit_replica asks the primary there.
	same := state != nil && state.ID.ValueString() == url && !r.data.PlanReadsPrimaryRefs
	if same && !state.Refs.IsNull() && !state.Refs.IsUnknown() {
		if offer := loadRefsRecord(ctx, req.Private, recordKey(url, answer.Primary)); offer != nil {
			var current map[string]string
			resp.Diagnostics.Append(state.Refs.ElementsAs(ctx, &current, false)...)
			local, err := refsList(current)
			if err != nil {
				resp.Diagnostics.AddError("Invalid secondary state", fmt.Sprintf(
					"The refs recorded for the secondary at %s: %v. Run terraform apply -refresh-only to read them again.", url, err))
				return
			}
			// The daemon has checked the pins against its primary.
			p, err := replicate.PlanRefsOffline(offer, local, pull)
			if resp.Diagnostics.Append(planDiagnostics(p, err, answer.Primary, "the secondary at "+url)...); resp.Diagnostics.HasError() {
				return
			}
			planned = p.Refs
			if !maps.Equal(planned, answer.Refs) {
				tflog.Info(ctx, "the daemon or its primary moved since refresh; planning from the refresh", map[string]any{
					"url": url, "differences": replicate.RefsDiff(planned, answer.Refs, "planned", "(absent)"),
				})
			}
		}
	}
	if resp.Diagnostics.HasError() {
		return
	}
	if planned == nil {
		planned = map[string]string{}
	}
	refs, diags := types.MapValueFrom(ctx, types.StringType, planned)
	resp.Diagnostics.Append(diags...)
	plan.Refs = refs
	// last_pull changes only with the refs, so an unchanged fleet gives an
	// empty plan.
	if same && state.Refs.Equal(refs) && !state.LastPull.IsUnknown() {
		plan.LastPull = state.LastPull
	} else {
		plan.LastPull = types.ObjectUnknown(lastPullAttrTypes)
	}
	tflog.Info(ctx, "planned secondary", map[string]any{"url": url, "primary": answer.Primary, "branches": len(planned)})
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

func (r *SecondaryResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan secondaryResourceModel
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
	state, primary, diags := r.apply(ctx, &plan, timeout)
	resp.Diagnostics.Append(diags...)
	if state == nil {
		return // the daemon took nothing: it does not exist for Terraform
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, state)...)
	// Keep a refs record, as a refresh does, so that a plan with
	// -refresh=false right after the create plans like any other.
	resp.Diagnostics.Append(resp.Private.SetKey(ctx, privateKeyPrimaryRefs, r.offerRecord(ctx, state, primary))...)
}

func (r *SecondaryResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan secondaryResourceModel
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
	state, _, diags := r.apply(ctx, &plan, timeout)
	resp.Diagnostics.Append(diags...)
	if state == nil {
		// The daemon took nothing: keep the prior state.
		resp.State.Raw = req.State.Raw
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, state)...)
}

// apply sends the desired state and the planned refs to the daemon (PUT
// /desired), which pulls exactly those hashes, and returns the new state.
// state is nil when the daemon did not take the request (nothing changed);
// primary is the daemon's primary.
func (r *SecondaryResource) apply(ctx context.Context, plan *secondaryResourceModel, timeout time.Duration) (state *secondaryResourceModel, primary string, diags diag.Diagnostics) {
	url := plan.URL.ValueString()
	want, _, d := desired(ctx, plan)
	diags.Append(d...)
	ctx, client, d := r.control(ctx, plan, timeout)
	diags.Append(d...)
	if diags.HasError() {
		return nil, "", diags
	}
	// The refs to produce: the plan's, or, if the plan could not know them
	// (unknown inputs), what the daemon plans now.
	var planned map[string]string
	if plan.Refs.IsUnknown() || plan.Refs.IsNull() {
		answer, err := client.Plan(ctx, want)
		if err != nil {
			diags.Append(r.controlError(plan, "Planning", err))
			return nil, "", diags
		}
		planned = answer.Refs
	} else if diags.Append(plan.Refs.ElementsAs(ctx, &planned, false)...); diags.HasError() {
		return nil, "", diags
	}
	if planned == nil {
		planned = map[string]string{}
	}

	tflog.Info(ctx, "applying secondary", map[string]any{"url": url, "branches": len(planned), "prune": want.Prune, "follow": want.Follow})
	res, err := client.Apply(ctx, secondary.ApplyRequest{Desired: want, Expect: planned})
	if err != nil {
		diags.Append(r.controlError(plan, "Applying to", err))
		return nil, "", diags
	}
	pull := res.Pull
	for _, f := range pull.Errors {
		zone, name, ok := repo.SplitRefPath(f.Ref)
		if !ok {
			zone, name = "?", f.Ref
		}
		diags.Append(branchPullError("secondary "+url, pull.Primary, zone, name, f.Error, replicate.ShortHash(res.Status.Refs[f.Ref], "(absent)")))
	}
	if pull.Error != "" && len(pull.Errors) == 0 {
		diags.AddError("Replica pull failed", fmt.Sprintf(
			"The secondary daemon at %s could not pull from primary %s: %s. Check that the daemon can reach its "+
				"primary, then run apply again.", url, pull.Primary, pull.Error))
	}
	got := res.Status.Refs
	if got == nil {
		got = map[string]string{}
	}
	if !diags.HasError() && !maps.Equal(got, planned) {
		diags.AddError("Secondary differs from the plan", fmt.Sprintf(
			"After the apply, the secondary daemon at %s (primary %s) has refs that the plan did not show: %s. "+
				"Another client moved the daemon during the apply. Run plan and apply again.",
			url, pull.Primary, replicate.RefsDiff(planned, got, "planned", "(absent)")))
	}
	tflog.Info(ctx, "applied secondary", map[string]any{
		"url": url, "primary": pull.Primary, "moved": len(pull.Moved), "failed": len(pull.Errors),
		"objects": pull.Objects, "bytes": pull.Bytes, "duration_ms": pull.DurationMS,
	})

	state = new(secondaryResourceModel)
	*state = *plan
	state.ID = plan.URL
	refs, d := types.MapValueFrom(ctx, types.StringType, got)
	diags.Append(d...)
	state.Refs = refs
	if plan.LastPull.IsUnknown() || len(pull.Moved) > 0 {
		lp, d := lastPullValue(int64(pull.Objects), pull.Bytes, pull.DurationMS, pull.Primary)
		diags.Append(d...)
		state.LastPull = lp
	}
	return state, pull.Primary, diags
}

// recordKey names a refs record by the daemon and the primary it pulls from,
// so that a daemon restarted with another --primary never plans from what
// the old primary offered.
func recordKey(url, primary string) string { return url + " <- " + primary }

// offerRecord asks the daemon what its primary offers, for the plan (see
// ModifyPlan); nil when it cannot: the plan then uses the daemon's answer.
func (r *SecondaryResource) offerRecord(ctx context.Context, m *secondaryResourceModel, primary string) []byte {
	ctx, client, diags := r.control(ctx, m, 0)
	if diags.HasError() {
		return nil
	}
	offer, err := client.Offer(ctx)
	if err != nil {
		tflog.Warn(ctx, "cannot record what the secondary's primary offers", map[string]any{"url": client.URL(), "error": err.Error()})
		return nil
	}
	return encodeRefsRecord(recordKey(m.ID.ValueString(), primary), offer)
}

func (r *SecondaryResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state secondaryResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if state.URL.IsNull() {
		state.URL = state.ID
	}
	ctx, client, diags := r.control(ctx, &state, 0)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	st, err := client.Status(ctx)
	if err != nil {
		resp.Diagnostics.Append(r.controlError(&state, "Reading", err))
		return
	}
	if st.Desired == nil {
		// Cleared (or its state file lost): nothing of this resource is
		// left on the daemon. Attributes equal to the defaults could not
		// show that as drift, so the resource is gone, and the next plan
		// creates it again (keeping the daemon's data).
		tflog.Info(ctx, "secondary daemon has no desired state; removing it from state", map[string]any{"url": client.URL()})
		resp.State.RemoveResource(ctx)
		resp.Diagnostics.Append(resp.Private.SetKey(ctx, privateKeyPrimaryRefs, nil)...)
		return
	}
	resp.Diagnostics.Append(state.readDesired(ctx, st)...)
	state.ID = state.URL
	if state.LastPull.IsUnknown() {
		state.LastPull = types.ObjectNull(lastPullAttrTypes)
	}
	tflog.Debug(ctx, "read secondary", map[string]any{"url": client.URL(), "branches": len(st.Refs), "busy": st.Busy})
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
	resp.Diagnostics.Append(resp.Private.SetKey(ctx, privateKeyPrimaryRefs, r.offerRecord(ctx, &state, st.Primary))...)
}

// readDesired sets the refs and the desired state from a daemon's status.
// A value equal to the state's in meaning (an empty list or map for
// none) stays as it is, so it shows no change.
func (m *secondaryResourceModel) readDesired(ctx context.Context, st *secondary.Status) diag.Diagnostics {
	var diags diag.Diagnostics
	refs := st.Refs
	if refs == nil {
		refs = map[string]string{}
	}
	v, d := types.MapValueFrom(ctx, types.StringType, refs)
	diags.Append(d...)
	m.Refs = v
	list := func(old types.List, got []string) types.List {
		if len(got) == 0 {
			if !old.IsNull() && len(old.Elements()) == 0 {
				return old
			}
			return types.ListNull(types.StringType)
		}
		l, d := types.ListValueFrom(ctx, types.StringType, got)
		diags.Append(d...)
		return l
	}
	m.Zones = list(m.Zones, st.Desired.Zones)
	m.Branches = list(m.Branches, st.Desired.Branches)
	if len(st.Desired.Pins) == 0 {
		if m.Pins.IsNull() || len(m.Pins.Elements()) != 0 {
			m.Pins = types.MapNull(types.StringType)
		}
	} else {
		p, d := types.MapValueFrom(ctx, types.StringType, st.Desired.Pins)
		diags.Append(d...)
		m.Pins = p
	}
	m.Prune = types.BoolValue(st.Desired.Prune)
	m.Follow = types.BoolValue(st.Desired.Follow)
	return diags
}

func (r *SecondaryResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state secondaryResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := state.Timeouts.Delete(ctx, defaultDeleteTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ctx, client, diags := r.control(ctx, &state, timeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := client.Clear(ctx); err != nil {
		d := r.controlError(&state, "Clearing the desired state of", err)
		resp.Diagnostics.AddError(d.Summary(), d.Detail()+" To forget a secondary that is gone for good, "+
			"run terraform state rm on it instead.")
		return
	}
	tflog.Info(ctx, "cleared the secondary's desired state; its data stays", map[string]any{"url": client.URL()})
}

// ImportState takes the daemon's URL:
// terraform import zonegit_secondary.ns1 https://ns1.example:9355
func (r *SecondaryResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	if err := checkSecondaryURL(req.ID); err != nil {
		resp.Diagnostics.AddError("Invalid import ID", fmt.Sprintf(
			"The import ID must be the secondary daemon's URL, for example https://ns1.example:9355: %v", err))
		return
	}
	m := secondaryResourceModel{
		URL: types.StringValue(req.ID), ControlToken: types.StringNull(), CACertPEM: types.StringNull(),
		ClientCertPEM: types.StringNull(), ClientKeyPEM: types.StringNull(),
	}
	ctx, client, diags := r.control(ctx, &m, 0)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	st, err := client.Status(ctx)
	if err != nil {
		resp.Diagnostics.Append(r.controlError(&m, "Importing", err))
		return
	}
	if st.Desired == nil {
		resp.Diagnostics.AddError("Cannot import secondary", fmt.Sprintf(
			"The secondary daemon at %s has no desired state (it was never applied, or it was cleared), so there "+
				"is nothing to import. Remove the import: terraform apply creates the zonegit_secondary, keeping the "+
				"daemon's data.", req.ID))
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("url"), req.ID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), req.ID)...)
	tflog.Info(ctx, "imported secondary", map[string]any{"url": req.ID, "primary": st.Primary})
}
