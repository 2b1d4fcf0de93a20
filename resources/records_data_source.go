package resources

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"
	"github.com/miekg/dns"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/replicate/wire"
	"github.com/zonegit/terraform-provider-zonegit/repo"
)

var (
	_ datasource.DataSource              = (*RecordsDataSource)(nil)
	_ datasource.DataSourceWithConfigure = (*RecordsDataSource)(nil)
)

// NewRecordsDataSource returns the zonegit_records data source.
func NewRecordsDataSource() datasource.DataSource {
	return &RecordsDataSource{}
}

// RecordsDataSource reads the RRsets of one commit of a zone, from the
// primary or from a local replica, and optionally how they differ from
// another commit's.
type RecordsDataSource struct {
	data *ProviderData
}

type recordsDataSourceModel struct {
	Zone           types.String `tfsdk:"zone"`
	Ref            types.String `tfsdk:"ref"`
	Path           types.String `tfsdk:"path"`
	PrimaryURL     types.String `tfsdk:"primary_url"`
	Names          types.List   `tfsdk:"names"`
	Types          types.List   `tfsdk:"types"`
	DiffFrom       types.String `tfsdk:"diff_from"`
	Commit         types.String `tfsdk:"commit"`
	DiffFromCommit types.String `tfsdk:"diff_from_commit"`
	Records        types.List   `tfsdk:"records"`
	ZoneFile       types.String `tfsdk:"zone_file"`
	Added          types.List   `tfsdk:"added"`
	Removed        types.List   `tfsdk:"removed"`
	Changed        types.List   `tfsdk:"changed"`
}

// recordAttrTypes is the shape of one element of records.
var recordAttrTypes = map[string]attr.Type{
	"name":  types.StringType,
	"type":  types.StringType,
	"ttl":   types.Int64Type,
	"rdata": types.ListType{ElemType: types.StringType},
}

// noTagsZone is the zone filter of the data source's pulls. Pins win over
// filters, so the pinned commits are transferred whatever it says; tags
// are selected by the zone filter alone, and this name (under .invalid,
// RFC 6761) matches no zone a primary serves, so none of the primary's
// tags, and none of the history only they reach, is transferred.
const noTagsZone = "zonegit-records.invalid."

// Pin names of the in-memory repository the data source pulls into.
const (
	pinRef      = "records-ref"
	pinDiffFrom = "records-diff-from"
)

func (d *RecordsDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_records"
}

// Schema is one declaration per attribute with its documentation (the
// registry docs are generated from it): longer than 80 lines by nature.
func (d *RecordsDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Reads the records (RRsets) of one commit of a zone, from the primary or from a local " +
			"replica, and optionally what changed since another commit: for outputs, `precondition` and `check` " +
			"blocks (\"the planned commit has `www A 192.0.2.10`\", \"no record was deleted\").\n\n" +
			"From a primary, the data source transfers the commit (and `diff_from`'s) with the same verified " +
			"transfer as `zonegit_replica`, into memory, and keeps nothing: no local repository is written. " +
			"A commit's transfer includes its history (a pull stores a commit only with its parents). From a " +
			"`path`, it opens the replica read-only and never changes it.\n\n" +
			"Records are in the zone's canonical DNS order (RFC 4034 section 6.1): the apex first, each name " +
			"before the names below it, sibling labels in byte order (the order of the zone's tree); RRsets of " +
			"one name by type mnemonic; records of one RRset in their stored order (sorted by wire-form data).",
		Attributes: map[string]schema.Attribute{
			"zone": schema.StringAttribute{
				MarkdownDescription: "Zone name, lowercase with the trailing dot (`example.com.`).",
				Required:            true,
				Validators:          []validator.String{zoneNameValidator{}},
			},
			"ref": schema.StringAttribute{
				MarkdownDescription: "What to read: a branch or tag of the zone, or a commit hash (64 hex digits). " +
					"A name that is both a branch and a tag is an error (give the hash). Tags are only known from " +
					"a primary that lists them (the `tags` extension) or from a replica.",
				Required:   true,
				Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"path": schema.StringAttribute{
				MarkdownDescription: "Read the local replica at this path instead of the primary. It is opened " +
					"read-only (a private snapshot) and never modified; a writer holding it makes the read fail.",
				Optional: true,
				Validators: []validator.String{
					stringvalidator.LengthAtLeast(1),
					stringvalidator.ConflictsWith(path.MatchRoot("primary_url")),
				},
			},
			"primary_url": schema.StringAttribute{
				MarkdownDescription: "Base URL of the primary (`http://` or `https://`), overriding the provider's " +
					"`primary_url`. Without `path`, one of the two must be set.",
				Optional:   true,
				Validators: []validator.String{PrimaryURLValidator()},
			},
			"names": schema.ListAttribute{
				MarkdownDescription: "Only these owner names: fully qualified (with the trailing dot) and in the " +
					"zone; compared case-insensitively. Omit for every name. Applies to `records`, `zone_file` " +
					"and the diff.",
				ElementType: types.StringType,
				Optional:    true,
				Validators:  []validator.List{listvalidator.SizeAtLeast(1)},
			},
			"types": schema.ListAttribute{
				MarkdownDescription: "Only these RR types: mnemonics (`A`, `MX`, case-insensitive) or RFC 3597 " +
					"`TYPEnnn`. Omit for every type. Applies to `records`, `zone_file` and the diff.",
				ElementType: types.StringType,
				Optional:    true,
				Validators:  []validator.List{listvalidator.SizeAtLeast(1), listvalidator.ValueStringsAre(rrTypeValidator{})},
			},
			"diff_from": schema.StringAttribute{
				MarkdownDescription: "Another ref (branch, tag or commit hash) of the zone to compare with: fills " +
					"`added`, `removed` and `changed`.",
				Optional:   true,
				Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"commit": schema.StringAttribute{
				MarkdownDescription: "The commit `ref` resolved to (64 hex digits).",
				Computed:            true,
			},
			"diff_from_commit": schema.StringAttribute{
				MarkdownDescription: "The commit `diff_from` resolved to; null without `diff_from`.",
				Computed:            true,
			},
			"records": schema.ListNestedAttribute{
				MarkdownDescription: "One element per RRset, in canonical order (see above).",
				Computed:            true,
				NestedObject: schema.NestedAttributeObject{
					Attributes: map[string]schema.Attribute{
						"name": schema.StringAttribute{
							MarkdownDescription: "Owner name, lowercase, fully qualified.",
							Computed:            true,
						},
						"type": schema.StringAttribute{
							MarkdownDescription: "RR type mnemonic (`TYPEnnn` for a type without one).",
							Computed:            true,
						},
						"ttl": schema.Int64Attribute{
							MarkdownDescription: "TTL in seconds.",
							Computed:            true,
						},
						"rdata": schema.ListAttribute{
							MarkdownDescription: "Each record's data in master-file form (`10 mail.example.com.`).",
							ElementType:         types.StringType,
							Computed:            true,
						},
					},
				},
			},
			"zone_file": schema.StringAttribute{
				MarkdownDescription: "The RRsets as master-file text: one record per line, absolute names, TTL " +
					"and class on every line, in the order of `records`.",
				Computed: true,
			},
			"added": schema.ListAttribute{
				MarkdownDescription: "With `diff_from`: RRsets in `ref` but not in `diff_from`, as `\"<name> <type>\"`, " +
					"in canonical order. Null without `diff_from`.",
				ElementType: types.StringType,
				Computed:    true,
			},
			"removed": schema.ListAttribute{
				MarkdownDescription: "With `diff_from`: RRsets in `diff_from` but not in `ref`, as `\"<name> <type>\"`.",
				ElementType:         types.StringType,
				Computed:            true,
			},
			"changed": schema.ListAttribute{
				MarkdownDescription: "With `diff_from`: RRsets in both whose TTL or records differ, as `\"<name> <type>\"`.",
				ElementType:         types.StringType,
				Computed:            true,
			},
		},
	}
}

func (d *RecordsDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	data, diags := providerDataFrom(req.ProviderData)
	resp.Diagnostics.Append(diags...)
	if data != nil {
		d.data = data
	}
}

// recordsFilter is the names and types filters of a read.
type recordsFilter struct {
	names map[string]bool // nil: every name
	types map[string]bool // nil: every type
}

// keep is the names filter as repo.ZoneRecords asks it.
func (f *recordsFilter) keep(zone string) func(string) (bool, bool) {
	if f.names == nil {
		return nil
	}
	return func(name string) (bool, bool) {
		descend := false
		for n := range f.names {
			if n != name && dns.IsSubDomain(name, n) {
				descend = true
				break
			}
		}
		return f.names[name], descend
	}
}

// apply drops the RRsets the types filter does not select.
func (f *recordsFilter) apply(sets []*repo.RRset) []*repo.RRset {
	if f.types == nil {
		return sets
	}
	return slices.DeleteFunc(sets, func(s *repo.RRset) bool { return !f.types[s.Type] })
}

// zoneRefs is what the source knows of the zone's refs.
type zoneRefs struct {
	where     string // "primary <url>" or "replica <path>"
	zones     []string
	branches  map[string]repo.Hash
	tags      map[string]repo.Hash
	tagsKnown bool
}

// resolve turns a ref into a commit hash. hex says the ref was a hash (the
// caller checks that the source has it).
func (z *zoneRefs) resolve(attr path.Path, zone, ref string) (h repo.Hash, hex bool, diags diag.Diagnostics) {
	if len(ref) == 64 {
		if h, err := repo.ParseHash(ref); err == nil {
			return h, true, nil
		}
	}
	b, isBranch := z.branches[ref]
	t, isTag := z.tags[ref]
	switch {
	case isBranch && isTag:
		diags.AddAttributeError(attr, "Ambiguous ref", fmt.Sprintf(
			"%q is both a branch (at %s) and a tag (at %s) of zone %s on %s. Give the commit hash instead.",
			ref, b.Short(), t.Short(), zone, z.where))
	case isBranch:
		return b, false, nil
	case isTag:
		return t, false, nil
	default:
		msg := fmt.Sprintf("Zone %s on %s has no branch or tag named %q. Branches: %s; tags: %s.",
			zone, z.where, ref, listOrNone(slices.Sorted(maps.Keys(z.branches))), listOrNone(slices.Sorted(maps.Keys(z.tags))))
		if !z.tagsKnown {
			msg = fmt.Sprintf("Zone %s on %s has no branch named %q. Branches: %s. This primary does not list "+
				"its tags (no \"tags\" extension), so a tag cannot be read by name from it: give its commit hash.",
				zone, z.where, ref, listOrNone(slices.Sorted(maps.Keys(z.branches))))
		}
		diags.AddAttributeError(attr, "Unknown ref", msg+" A ref is a branch, a tag or a 64-hex commit hash.")
	}
	return h, false, diags
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "(none)"
	}
	return strings.Join(s, ", ")
}

// commitsRead is the result of reading the configured commits.
type commitsRead struct {
	ref, from         repo.Hash
	refSets, fromSets []*repo.RRset
}

func (d *RecordsDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var config recordsDataSourceModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	if resp.Diagnostics.HasError() {
		return
	}
	zone := config.Zone.ValueString()
	filter, diags := recordsFilters(ctx, &config, zone)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}

	var got *commitsRead
	if !config.Path.IsNull() {
		got, diags = readReplicaCommits(&config, filter)
	} else {
		got, diags = d.readPrimaryCommits(ctx, &config, filter)
	}
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}

	got.refSets = filter.apply(got.refSets)
	config.Commit = types.StringValue(got.ref.String())
	config.Records, diags = recordsList(got.refSets)
	resp.Diagnostics.Append(diags...)
	config.ZoneFile = types.StringValue(repo.ZoneFileText(got.refSets))
	config.DiffFromCommit = types.StringNull()
	nullList := types.ListNull(types.StringType)
	config.Added, config.Removed, config.Changed = nullList, nullList, nullList
	if !config.DiffFrom.IsNull() {
		config.DiffFromCommit = types.StringValue(got.from.String())
		added, removed, changed := diffRRsets(filter.apply(got.fromSets), got.refSets)
		for _, l := range []struct {
			dst *types.List
			src []string
		}{{&config.Added, added}, {&config.Removed, removed}, {&config.Changed, changed}} {
			*l.dst, diags = types.ListValueFrom(ctx, types.StringType, l.src)
			resp.Diagnostics.Append(diags...)
		}
	}
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &config)...)
}

// recordsFilters checks the names and types filters against the zone and
// returns them normalised (names lowercase, types as their mnemonics).
func recordsFilters(ctx context.Context, config *recordsDataSourceModel, zone string) (*recordsFilter, diag.Diagnostics) {
	var diags diag.Diagnostics
	f := &recordsFilter{}
	var names, typs []string
	diags.Append(config.Names.ElementsAs(ctx, &names, false)...)
	diags.Append(config.Types.ElementsAs(ctx, &typs, false)...)
	if diags.HasError() {
		return nil, diags
	}
	if !config.Names.IsNull() {
		f.names = map[string]bool{}
		for i, n := range names {
			name := strings.ToLower(n)
			if _, ok := dns.IsDomainName(name); !ok || !dns.IsFqdn(name) || !dns.IsSubDomain(zone, name) {
				diags.AddAttributeError(path.Root("names").AtListIndex(i), "Invalid name", fmt.Sprintf(
					"%q is not a fully qualified name in zone %s. Give owner names with the trailing dot, such as "+
						"%q.", n, zone, "www."+zone))
				continue
			}
			f.names[name] = true
		}
	}
	if !config.Types.IsNull() {
		f.types = map[string]bool{}
		for _, t := range typs {
			if code, ok := parseRRType(t); ok {
				f.types[dns.Type(code).String()] = true
			}
		}
	}
	return f, diags
}

// parseRRType reads a type mnemonic (any case) or RFC 3597 TYPEnnn.
func parseRRType(s string) (uint16, bool) {
	u := strings.ToUpper(s)
	if code, ok := dns.StringToType[u]; ok {
		return code, true
	}
	if rest, ok := strings.CutPrefix(u, "TYPE"); ok {
		if n, err := strconv.ParseUint(rest, 10, 16); err == nil {
			return uint16(n), true
		}
	}
	return 0, false
}

// readReplicaCommits reads the commits from the local replica at path.
func readReplicaCommits(config *recordsDataSourceModel, filter *recordsFilter) (*commitsRead, diag.Diagnostics) {
	var diags diag.Diagnostics
	dir, err := absPath(config.Path.ValueString())
	if err != nil {
		diags.AddAttributeError(path.Root("path"), "Invalid replica path", err.Error())
		return nil, diags
	}
	d, err := repo.InspectDir(dir)
	if err == nil && (!d.Exists || d.Empty()) {
		err = errors.New("no repository is there")
	}
	if err != nil {
		diags.AddAttributeError(path.Root("path"), "Cannot read replica", fmt.Sprintf("Replica %s: %v.", dir, err))
		return nil, diags
	}
	r, err := repo.Open(dir, repo.Options{ReadOnly: true})
	if err != nil {
		diags.AddAttributeError(path.Root("path"), "Cannot open replica", fmt.Sprintf(
			"Opening the replica at %s read-only failed: %v.", dir, err))
		return nil, diags
	}
	defer r.Close()

	zone := config.Zone.ValueString()
	refs := &zoneRefs{where: "replica " + dir, tagsKnown: true, branches: map[string]repo.Hash{}, tags: map[string]repo.Hash{}}
	if refs.zones, err = r.Zones(); err == nil {
		var bs, ts []repo.Ref
		if bs, err = r.Branches(zone); err == nil {
			if ts, err = r.Tags(zone); err == nil {
				for _, b := range bs {
					refs.branches[b.Name] = b.Hash
				}
				for _, t := range ts {
					refs.tags[t.Name] = t.Hash
				}
			}
		}
	}
	if err != nil {
		diags.AddAttributeError(path.Root("path"), "Cannot read replica", fmt.Sprintf("Reading the refs of the replica at %s: %v.", dir, err))
		return nil, diags
	}
	if !slices.Contains(refs.zones, zone) {
		diags.AddAttributeError(path.Root("zone"), "Zone not in replica", fmt.Sprintf(
			"The replica at %s has no zone %s. Its zones: %s.", dir, zone, listOrNone(refs.zones)))
		return nil, diags
	}
	got := &commitsRead{}
	var hex, fromHex bool
	got.ref, hex, diags = refs.resolve(path.Root("ref"), zone, config.Ref.ValueString())
	if !config.DiffFrom.IsNull() {
		var d diag.Diagnostics
		got.from, fromHex, d = refs.resolve(path.Root("diff_from"), zone, config.DiffFrom.ValueString())
		diags.Append(d...)
	}
	if diags.HasError() {
		return nil, diags
	}
	err = r.View(func(rd repo.Reader) error {
		var err error
		if got.refSets, err = readCommit(rd, got.ref, hex, zone, filter, path.Root("ref"), refs.where, &diags); err != nil || config.DiffFrom.IsNull() {
			return err
		}
		got.fromSets, err = readCommit(rd, got.from, fromHex, zone, filter, path.Root("diff_from"), refs.where, &diags)
		return err
	})
	if err != nil {
		diags.AddError("Cannot read records", fmt.Sprintf("Reading zone %s from the replica at %s: %v.", zone, dir, err))
	}
	return got, diags
}

// readCommit reads the RRsets of commit h. A commit given by hash that the
// source does not have is a diagnostic on attr; other errors are returned.
func readCommit(rd repo.Reader, h repo.Hash, hex bool, zone string, filter *recordsFilter, attr path.Path, where string, diags *diag.Diagnostics) ([]*repo.RRset, error) {
	_, sets, err := repo.ZoneRecords(rd, h, zone, filter.keep(zone))
	if hex && errors.Is(err, repo.ErrNotFound) {
		diags.AddAttributeError(attr, "Unknown commit", fmt.Sprintf(
			"%s has no commit %s. Check the hash, or give a branch or tag name.", where, h))
		return nil, nil
	}
	return sets, err
}

// readPrimaryCommits resolves the refs on the primary, pulls the commits
// into an in-memory repository and reads them from it.
//
// Longer than 80 lines on purpose: resolving, pulling and reading share the
// in-memory repository and the client, which are set up and torn down here.
func (d *RecordsDataSource) readPrimaryCommits(ctx context.Context, config *recordsDataSourceModel, filter *recordsFilter) (*commitsRead, diag.Diagnostics) {
	var diags diag.Diagnostics
	if d.data == nil {
		diags.AddError("Provider not configured",
			"The zonegit provider was not configured before zonegit_records was read. This is a bug in the zonegit provider; please report it.")
		return nil, diags
	}
	opts := d.data.Client
	if !config.PrimaryURL.IsNull() {
		opts.PrimaryURL = config.PrimaryURL.ValueString()
	}
	if opts.PrimaryURL == "" {
		diags.AddAttributeError(path.Root("primary_url"), "Missing primary URL",
			"zonegit_records does not know where to read. Set path (a local replica), primary_url on the data "+
				"source, or primary_url in the provider configuration (or the ZONEGIT_PRIMARY_URL environment variable).")
		return nil, diags
	}
	zone := config.Zone.ValueString()
	ctx, opts = withClientLogging(ctx, opts)
	mem, err := repo.Open("", repo.Options{InMemory: true})
	if err != nil {
		diags.AddError("Cannot read records", fmt.Sprintf("Opening an in-memory repository: %v.", err))
		return nil, diags
	}
	defer mem.Close()
	client, err := replicate.NewClientWithOptions(mem, opts)
	if err != nil {
		diags.AddError("Invalid replication client settings",
			fmt.Sprintf("Cannot build a client for primary %s: %v. Check primary_url and the TLS settings of the provider.", opts.PrimaryURL, err))
		return nil, diags
	}
	info, err := client.RefsInfo(ctx)
	if err != nil {
		diags.Append(refsError(opts.PrimaryURL, err))
		return nil, diags
	}
	refs := &zoneRefs{where: "primary " + opts.PrimaryURL, zones: info.Refs.Zones, tagsKnown: info.Has(wire.CapTags),
		branches: map[string]repo.Hash{}, tags: map[string]repo.Hash{}}
	if !slices.Contains(refs.zones, zone) {
		diags.AddAttributeError(path.Root("zone"), "Zone not on primary", fmt.Sprintf(
			"Primary %s has no zone %s. Its zones: %s.", opts.PrimaryURL, zone, listOrNone(refs.zones)))
		return nil, diags
	}
	for _, l := range []struct {
		in  []replicate.Branch
		out map[string]repo.Hash
	}{{info.Refs.Branches, refs.branches}, {info.Refs.Tags, refs.tags}} {
		for _, b := range l.in {
			if h, err := repo.ParseHash(b.Hash); err == nil && b.Zone == zone {
				l.out[b.Name] = h
			}
		}
	}

	got := &commitsRead{}
	var hex, fromHex bool
	got.ref, hex, diags = refs.resolve(path.Root("ref"), zone, config.Ref.ValueString())
	if !config.DiffFrom.IsNull() {
		var dd diag.Diagnostics
		got.from, fromHex, dd = refs.resolve(path.Root("diff_from"), zone, config.DiffFrom.ValueString())
		diags.Append(dd...)
	}
	if diags.HasError() {
		return nil, diags
	}
	// A hash the primary does not have is the user's mistake, named on
	// the attribute, rather than a failed pull.
	for _, c := range []struct {
		h    repo.Hash
		hex  bool
		attr string
	}{{got.ref, hex, "ref"}, {got.from, fromHex, "diff_from"}} {
		if !c.hex {
			continue
		}
		if err := client.HasCommit(ctx, c.h); errors.Is(err, repo.ErrNotFound) {
			diags.AddAttributeError(path.Root(c.attr), "Unknown commit", fmt.Sprintf(
				"Primary %s has no commit %s. Check the hash, or give a branch or tag name.", opts.PrimaryURL, c.h))
		} else if err != nil {
			diags.AddAttributeError(path.Root(c.attr), "Cannot check commit", fmt.Sprintf(
				"Asking primary %s for commit %s failed: %v.", opts.PrimaryURL, c.h, err))
		}
	}
	if diags.HasError() {
		return nil, diags
	}

	pins := map[string]string{zone + "/" + pinRef: got.ref.String()}
	if !config.DiffFrom.IsNull() {
		pins[zone+"/"+pinDiffFrom] = got.from.String()
	}
	res, err := client.PullWith(ctx, replicate.PullOptions{Zones: []string{noTagsZone}, Pins: pins, PinsOnly: true})
	logRequestSummary(opts)
	if res != nil {
		tflog.Info(ctx, "pulled commits for zonegit_records", map[string]any{
			"primary": opts.PrimaryURL, "zone": zone, "commit": got.ref.String(), "objects": res.Objects,
			"bytes": res.Bytes, "requests": res.Requests, "duration_ms": res.Duration.Milliseconds(),
		})
	}
	if err != nil {
		diags.AddError("Cannot transfer the commit", fmt.Sprintf(
			"Transferring commit %s of zone %s from primary %s failed: %v. Check that the primary is reachable "+
				"and the provider's token and TLS settings.", got.ref, zone, opts.PrimaryURL, err))
		return nil, diags
	}
	err = mem.View(func(rd repo.Reader) error {
		var err error
		if got.refSets, err = readCommit(rd, got.ref, false, zone, filter, path.Root("ref"), refs.where, &diags); err != nil || config.DiffFrom.IsNull() {
			return err
		}
		got.fromSets, err = readCommit(rd, got.from, false, zone, filter, path.Root("diff_from"), refs.where, &diags)
		return err
	})
	if err != nil {
		diags.AddError("Cannot read records", fmt.Sprintf("Reading zone %s from primary %s: %v.", zone, opts.PrimaryURL, err))
	}
	return got, diags
}

// recordsList converts RRsets to the records attribute.
func recordsList(sets []*repo.RRset) (types.List, diag.Diagnostics) {
	var diags diag.Diagnostics
	elems := make([]attr.Value, 0, len(sets))
	for _, s := range sets {
		rdata := make([]attr.Value, len(s.RData))
		for i, r := range s.RData {
			rdata[i] = types.StringValue(r)
		}
		rl, d := types.ListValue(types.StringType, rdata)
		diags.Append(d...)
		obj, d := types.ObjectValue(recordAttrTypes, map[string]attr.Value{
			"name":  types.StringValue(s.Name),
			"type":  types.StringValue(s.Type),
			"ttl":   types.Int64Value(int64(s.TTL)),
			"rdata": rl,
		})
		diags.Append(d...)
		elems = append(elems, obj)
	}
	list, d := types.ListValue(types.ObjectType{AttrTypes: recordAttrTypes}, elems)
	diags.Append(d...)
	return list, diags
}

// diffRRsets compares two readings of a zone by "<name> <type>": added and
// changed in to's order, removed in from's. An RRset changed when its TTL
// or its records differ (records are in canonical order in both).
func diffRRsets(from, to []*repo.RRset) (added, removed, changed []string) {
	old := make(map[string]*repo.RRset, len(from))
	for _, s := range from {
		old[s.Key()] = s
	}
	now := make(map[string]bool, len(to))
	added, removed, changed = []string{}, []string{}, []string{}
	for _, s := range to {
		now[s.Key()] = true
		o, ok := old[s.Key()]
		switch {
		case !ok:
			added = append(added, s.Key())
		case o.TTL != s.TTL || !slices.Equal(o.RData, s.RData):
			changed = append(changed, s.Key())
		}
	}
	for _, s := range from {
		if !now[s.Key()] {
			removed = append(removed, s.Key())
		}
	}
	return added, removed, changed
}

// zoneNameValidator checks a zone name as the repository does.
type zoneNameValidator struct{}

func (zoneNameValidator) Description(context.Context) string {
	return "a zone name, lowercase with the trailing dot"
}

func (v zoneNameValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (zoneNameValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := repo.ValidateZone(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid zone", fmt.Sprintf("%v. Write zones lowercase with the trailing dot, as %q.", err, "example.com."))
	}
}

// rrTypeValidator checks an RR type filter entry.
type rrTypeValidator struct{}

func (rrTypeValidator) Description(context.Context) string {
	return "an RR type mnemonic or TYPEnnn"
}

func (v rrTypeValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (rrTypeValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if _, ok := parseRRType(req.ConfigValue.ValueString()); !ok {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid RR type", fmt.Sprintf(
			"%q is not an RR type: give a mnemonic such as A, AAAA, MX or TXT, or TYPEnnn (RFC 3597).", req.ConfigValue.ValueString()))
	}
}
