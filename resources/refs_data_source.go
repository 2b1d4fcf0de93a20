package resources

import (
	"context"
	"sort"

	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
)

var (
	_ datasource.DataSource              = (*RefsDataSource)(nil)
	_ datasource.DataSourceWithConfigure = (*RefsDataSource)(nil)
)

// NewRefsDataSource returns the zonegit_refs data source.
func NewRefsDataSource() datasource.DataSource {
	return &RefsDataSource{}
}

// RefsDataSource reads a primary's zones, branch tips and tags.
type RefsDataSource struct {
	data *ProviderData
}

// refsDataSourceModel is the data source's configuration and result.
type refsDataSourceModel struct {
	PrimaryURL types.String `tfsdk:"primary_url"`
	ZoneFilter types.List   `tfsdk:"zone_filter"`
	Zones      types.List   `tfsdk:"zones"`
	Branches   types.List   `tfsdk:"branches"`
	Tips       types.Map    `tfsdk:"tips"`
	Tags       types.List   `tfsdk:"tags"`
}

// refAttrTypes is the shape of one entry of branches and tags.
var refAttrTypes = map[string]attr.Type{
	"zone": types.StringType,
	"name": types.StringType,
	"hash": types.StringType,
}

func (d *RefsDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_refs"
}

func (d *RefsDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	refObject := func(what string) schema.NestedAttributeObject {
		return schema.NestedAttributeObject{
			Attributes: map[string]schema.Attribute{
				"zone": schema.StringAttribute{
					MarkdownDescription: "Zone name, with the trailing dot.",
					Computed:            true,
				},
				"name": schema.StringAttribute{
					MarkdownDescription: "The " + what + "'s name.",
					Computed:            true,
				},
				"hash": schema.StringAttribute{
					MarkdownDescription: "Hash (64 hex digits) the " + what + " points at.",
					Computed:            true,
				},
			},
		}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "Reads the zones, branch tips and tags a zonegit primary offers (one `GET /v0/refs`), " +
			"for outputs, triggers or other resources.",
		Attributes: map[string]schema.Attribute{
			"primary_url": schema.StringAttribute{
				MarkdownDescription: "Base URL of the primary (`http://` or `https://`), overriding the provider's " +
					"`primary_url`. One of the two must be set.",
				Optional:   true,
				Validators: []validator.String{PrimaryURLValidator()},
			},
			"zone_filter": schema.ListAttribute{
				MarkdownDescription: "Only report these zones: lowercase names with the trailing dot (`example.com.`) " +
					"or glob patterns (`*.example.com.`), matched as `zonegit_replica`'s `zones` are. Omit to report " +
					"every zone. A name without the trailing dot or in upper case would match nothing and is an error.",
				ElementType: types.StringType,
				Optional:    true,
				Validators: []validator.List{
					listvalidator.SizeAtLeast(1),
					listvalidator.ValueStringsAre(zonePatternValidator{}),
				},
			},
			"zones": schema.ListAttribute{
				MarkdownDescription: "Zones the primary has (within `zone_filter`), sorted.",
				ElementType:         types.StringType,
				Computed:            true,
			},
			"branches": schema.ListNestedAttribute{
				MarkdownDescription: "Branches of those zones, sorted by zone and name.",
				Computed:            true,
				NestedObject:        refObject("branch"),
			},
			"tips": schema.MapAttribute{
				MarkdownDescription: "Branch tips as `\"<zone>/<branch>\" = \"<commit hash>\"`, the same keys as " +
					"`zonegit_replica`'s `refs` and `pins`.",
				ElementType: types.StringType,
				Computed:    true,
			},
			"tags": schema.ListNestedAttribute{
				MarkdownDescription: "Tags of those zones, sorted by zone and name. Empty when the primary does not " +
					"offer tags (a plain v0 primary).",
				Computed:     true,
				NestedObject: refObject("tag"),
			},
		},
	}
}

func (d *RefsDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	data, diags := providerDataFrom(req.ProviderData)
	resp.Diagnostics.Append(diags...)
	if data != nil {
		d.data = data
	}
}

func (d *RefsDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var config refsDataSourceModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if d.data == nil {
		resp.Diagnostics.AddError("Provider not configured",
			"The zonegit provider was not configured before zonegit_refs was read. This is a bug in the zonegit provider; please report it.")
		return
	}
	opts := d.data.Client
	if !config.PrimaryURL.IsNull() {
		opts.PrimaryURL = config.PrimaryURL.ValueString()
	}
	if opts.PrimaryURL == "" {
		resp.Diagnostics.AddAttributeError(path.Root("primary_url"), "Missing primary URL",
			"zonegit_refs does not know which primary to read. Set primary_url on the data source, or primary_url "+
				"in the provider configuration (or the ZONEGIT_PRIMARY_URL environment variable).")
		return
	}
	var sel replicate.Selection
	resp.Diagnostics.Append(config.ZoneFilter.ElementsAs(ctx, &sel.Zones, false)...)
	if resp.Diagnostics.HasError() {
		return
	}

	ctx, opts = withClientLogging(ctx, opts)
	client, err := replicate.NewClientWithOptions(nil, opts)
	if err != nil {
		resp.Diagnostics.AddError("Invalid replication client settings",
			"Cannot build a client for primary "+opts.PrimaryURL+": "+err.Error()+". Check primary_url and the TLS settings of the provider.")
		return
	}
	info, err := client.RefsInfo(ctx)
	if err != nil {
		resp.Diagnostics.Append(refsError(opts.PrimaryURL, err))
		return
	}
	refs := info.Refs

	zones := []string{}
	for _, z := range refs.Zones {
		if sel.Zone(z) {
			zones = append(zones, z)
		}
	}
	sort.Strings(zones)
	branches, tips := filterRefs(refs.Branches, sel)
	tags, _ := filterRefs(refs.Tags, sel)

	var diags diag.Diagnostics
	config.Zones, diags = types.ListValueFrom(ctx, types.StringType, zones)
	resp.Diagnostics.Append(diags...)
	config.Tips, diags = types.MapValueFrom(ctx, types.StringType, tips)
	resp.Diagnostics.Append(diags...)
	config.Branches, diags = refList(branches)
	resp.Diagnostics.Append(diags...)
	config.Tags, diags = refList(tags)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	tflog.Info(ctx, "read primary refs", map[string]any{
		"primary": opts.PrimaryURL, "zones": len(zones), "branches": len(branches), "tags": len(tags),
	})
	resp.Diagnostics.Append(resp.State.Set(ctx, &config)...)
}

// filterRefs keeps the refs of zones the selection's zone filter selects,
// sorted by zone and name, and returns them with their "<zone>/<name>" =>
// hash map.
func filterRefs(in []replicate.Branch, sel replicate.Selection) ([]replicate.Branch, map[string]string) {
	out := []replicate.Branch{}
	tips := map[string]string{}
	for _, b := range in {
		if sel.Zone(b.Zone) {
			out = append(out, b)
			tips[b.Zone+"/"+b.Name] = b.Hash
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Zone != out[j].Zone {
			return out[i].Zone < out[j].Zone
		}
		return out[i].Name < out[j].Name
	})
	return out, tips
}

// refList converts refs to a list of {zone, name, hash} objects.
func refList(refs []replicate.Branch) (types.List, diag.Diagnostics) {
	elemType := types.ObjectType{AttrTypes: refAttrTypes}
	elems := make([]attr.Value, 0, len(refs))
	var diags diag.Diagnostics
	for _, b := range refs {
		obj, d := types.ObjectValue(refAttrTypes, map[string]attr.Value{
			"zone": types.StringValue(b.Zone),
			"name": types.StringValue(b.Name),
			"hash": types.StringValue(b.Hash),
		})
		diags.Append(d...)
		elems = append(elems, obj)
	}
	list, d := types.ListValue(elemType, elems)
	diags.Append(d...)
	return list, diags
}
