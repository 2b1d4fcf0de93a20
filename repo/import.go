package repo

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Defaults of an import. The author comes from the caller
// (ImportOptions.Author); the zonegit-replicate CLI fills it from
// ZONEGIT_AUTHOR_NAME and ZONEGIT_AUTHOR_EMAIL, as the zonegit tools do.
const (
	DefaultBranch      = "main"
	DefaultAuthorName  = "zonegit-replicate"
	DefaultAuthorEmail = "zonegit-replicate@localhost"
	// defaultTTL applies to records when the file gives neither a TTL nor
	// $TTL (FORMAT.md, import semantics).
	defaultTTL = 3600
)

// ErrInvalidZoneFile: a zone file that cannot be imported (syntax error,
// a record outside the zone, a refused construct). The error text names the
// file, line and record.
var ErrInvalidZoneFile = errors.New("invalid zone file")

// ImportOptions describe one zone-file import.
type ImportOptions struct {
	Zone       string    // FQDN with trailing dot, lowercase
	Branch     string    // default "main"
	Source     io.Reader // RFC 1035 master file
	SourceName string    // file name for error messages
	Message    string    // commit message; a default names the file
	Author     Signature // Name/Email; When/TZ default to now, local zone
}

// ImportResult says what an import produced.
type ImportResult struct {
	Zone, Branch string
	Commit       Hash // new tip (the old tip when Changed is false)
	Tree         Hash
	Parent       Hash // ZeroHash for a root commit
	RRsets       int
	Blobs        int  // blobs in the new tree (one per RRset)
	Trees        int  // trees in the new tree, the root included
	Objects      int  // the commit, its trees and blobs (history not counted)
	Changed      bool // false: the tree equals the tip's tree, no commit made
}

// Import parses an RFC 1035 master file (miekg/dns, the parser the zonegit
// tools use) and commits it as the zone's whole content on a branch: the
// file is the truth, so RRsets absent from the file are absent from the new
// tree. The parent is the branch tip when the branch exists. When the new
// tree equals the tip's tree no commit is made and Changed is false.
//
// Objects are written with a Batch that is flushed and synced before the
// branch moves by compare-and-swap against the tip read at the start, so a
// concurrent writer makes the import fail with ErrConflict instead of being
// overwritten.
//
// The same file gives the same blob and tree hashes as the zonegit tools:
// owner names are lowercased (names inside record data keep their case),
// relative names are made absolute, RRsets are merged across the file,
// an RRset whose records carry different TTLs gets the lowest (RFC 2181
// §5.2), records are sorted by their uncompressed wire rdata, and every name
// on the way from the apex to an owner gets a tree (empty non-terminals too).
//
// Where the zonegit tools are lenient this import decides (and documents):
//   - identical records of an RRset are stored once (RFC 2181 §5 allows
//     it; an RRset is a set);
//   - a CNAME beside other data at the same owner (other than the DNSSEC
//     types RRSIG and NSEC, RFC 4035 §2.5) is refused, and so is a CNAME
//     RRset of more than one record (RFC 1034 §3.6.2);
//   - a type without a mnemonic is stored under the leaf name TYPEnnn
//     (RFC 3597), e.g. TYPE65280;
//   - a record without record data (miekg/dns accepts those as dynamic
//     update syntax) and meta types such as ANY or OPT are refused;
//   - owner names with escapes (\. or \DDD) are refused: an escaped dot
//     cannot be a tree label and no zonegit vector shows how other escapes
//     map to labels.
//
// Refused as well, each with the file line: owners outside the zone
// (including look-alikes such as xexample.com. in example.com.), classes
// other than IN, $INCLUDE, syntax errors and an empty zone. All of these
// errors wrap ErrInvalidZoneFile.
//
// Import is linear in the number of records apart from one sort of the
// owner names, and holds only the packed record data in memory, not the
// parsed records.
//
// Longer than 80 lines on purpose: parse, build, compare with the tip and
// commit under one lock, in the order the guarantees above depend on.
func (r *Repo) Import(ctx context.Context, opts ImportOptions) (*ImportResult, error) {
	if r.readOnly {
		return nil, ErrReadOnly
	}
	zone, branch := opts.Zone, opts.Branch
	if branch == "" {
		branch = DefaultBranch
	}
	if err := ValidateZone(zone); err != nil {
		return nil, err
	}
	if err := ValidateBranch(branch); err != nil {
		return nil, err
	}
	if opts.Source == nil {
		return nil, errors.New("import: no zone file to read")
	}
	file := opts.SourceName
	if file == "" {
		file = "zone file"
	}
	author, err := importAuthor(opts.Author)
	if err != nil {
		return nil, err
	}

	// The tip is read before anything else: it is both the parent and the
	// expected value of the compare-and-swap that publishes the commit.
	tip, tipTree, err := r.tipTree(zone, branch)
	if err != nil {
		return nil, err
	}

	z, err := parseZone(ctx, zone, file, opts.Source)
	if err != nil {
		return nil, err
	}
	z.sortRecords()
	if err := z.check(); err != nil {
		return nil, err
	}

	// On an existing branch, hash the new tree without writing first: a
	// re-import of unchanged content then costs no writes at all (writing a
	// million objects again would also churn Badger's compactions).
	if !tip.IsZero() {
		root, err := z.build(ctx, nil)
		if err != nil {
			return nil, err
		}
		if root == tipTree {
			return &ImportResult{
				Zone: zone, Branch: branch, Commit: tip, Tree: root, Parent: tip,
				RRsets: z.rrsets, Blobs: z.blobs, Trees: z.trees, Objects: 1 + z.blobs + z.trees,
			}, nil
		}
	}

	b, err := r.NewBatch()
	if err != nil {
		return nil, err
	}
	flushed := false
	defer func() {
		if !flushed {
			b.Cancel()
		}
	}()
	root, err := z.build(ctx, b)
	if err != nil {
		return nil, err
	}
	res := &ImportResult{
		Zone: zone, Branch: branch, Tree: root, Parent: tip,
		RRsets: z.rrsets, Blobs: z.blobs, Trees: z.trees,
		Objects: 1 + z.blobs + z.trees,
	}

	msg := opts.Message
	if msg == "" {
		msg = "import " + filepath.Base(file)
	}
	c := &Commit{Tree: root, Author: author, Committer: author, Message: msg}
	if !tip.IsZero() {
		c.Parents = []Hash{tip}
	}
	ch, err := b.PutObject(KindCommit, c.Encode())
	if err != nil {
		return nil, fmt.Errorf("import %s: store commit: %w", file, err)
	}
	flushed = true
	if err := b.Flush(); err != nil {
		return nil, fmt.Errorf("import %s: %w", file, err)
	}
	first, _, _ := strings.Cut(msg, "\n")
	err = r.UpdateBranch(zone, branch, tip, ch, &ReflogEntry{
		Author:   author.Name + " <" + author.Email + ">",
		UnixTime: author.When,
		TZOffset: author.TZ,
		Op:       "commit",
		Message:  first,
	})
	if err != nil {
		return nil, fmt.Errorf("import %s: move branch %s: %w", file, BranchRef(zone, branch), err)
	}
	res.Commit, res.Changed = ch, true
	return res, nil
}

// tipTree returns a branch's tip and the tip commit's tree, or zero hashes
// when the branch does not exist yet.
func (r *Repo) tipTree(zone, branch string) (tip, tree Hash, err error) {
	tip, err = r.Branch(zone, branch)
	if errors.Is(err, ErrNotFound) {
		return ZeroHash, ZeroHash, nil
	}
	if err != nil {
		return tip, tree, err
	}
	kind, payload, err := r.Get(tip)
	if err != nil {
		return tip, tree, fmt.Errorf("branch %s: tip: %w", BranchRef(zone, branch), err)
	}
	if kind != KindCommit {
		return tip, tree, fmt.Errorf("branch %s: tip %s is a %s, want a commit: %w", BranchRef(zone, branch), tip.Short(), kind, ErrCorrupt)
	}
	c, err := DecodeCommit(payload)
	if err != nil {
		return tip, tree, fmt.Errorf("branch %s: tip %s: %w", BranchRef(zone, branch), tip.Short(), err)
	}
	return tip, c.Tree, nil
}

// importAuthor fills in the author defaults and refuses values that would
// corrupt the commit's author line.
func importAuthor(a Signature) (Signature, error) {
	if a.Name == "" {
		a.Name = DefaultAuthorName
	}
	if a.Email == "" {
		a.Email = DefaultAuthorEmail
	}
	if a.When == 0 {
		now := time.Now()
		_, off := now.Zone()
		a.When, a.TZ = now.Unix(), off/60
	}
	if strings.ContainsAny(a.Name, "<>\n") || strings.ContainsAny(a.Email, "<>\n") {
		return a, fmt.Errorf("author %q <%s>: name and email must not contain '<', '>' or a newline", clip(a.Name), clip(a.Email))
	}
	return a, nil
}

// record is one parsed record. Its tree path and rdata live in the arenas
// of zoneData, so a record costs 24 bytes plus its data, whatever the
// parser allocated for it.
type record struct {
	keyOff uint32 // path key in zoneData.keys (see pathKey)
	rdOff  uint32 // rdata in zoneData.rdata
	ttl    uint32
	line   int32
	typ    uint16
	rdLen  uint16
	keyLen uint8 // a relative owner name is shorter than 255 bytes
}

// zoneData is a parsed zone. RRsets are not grouped while reading: the
// records are sorted by (path, type, rdata) afterwards, which makes the
// records of an RRset adjacent and in blob order, the RRsets of a name
// adjacent, and every subtree contiguous, so the tree can be built
// bottom-up in one pass without any map.
type zoneData struct {
	zone, file string
	recs       []record
	keyArena   []byte // path keys while reading
	keys       string // keyArena once reading is done (substrings are free)
	rdata      []byte

	// the previous owner as the parser gave it, to share its path key
	prevName             string
	prevKeyOff, prevKeyN uint32

	// filled by check and build
	rrsets, rootLabels, blobs, trees int
}

func (z *zoneData) key(r *record) string { return z.keys[r.keyOff : r.keyOff+uint32(r.keyLen)] }

func (z *zoneData) rd(r *record) []byte {
	return z.rdata[r.rdOff : r.rdOff+uint32(r.rdLen) : r.rdOff+uint32(r.rdLen)]
}

// owner turns a path key back into the owner name (lowercase FQDN).
func (z *zoneData) owner(key string) string {
	if key == "" {
		return z.zone
	}
	var sb strings.Builder
	sb.Grow(len(key) + len(z.zone))
	end := len(key) - 1 // the 0 after the last label
	for end >= 0 {
		start := strings.LastIndexByte(key[:end], 0) + 1
		sb.WriteString(key[start:end])
		sb.WriteByte('.')
		end = start - 1
	}
	sb.WriteString(z.zone)
	return sb.String()
}

// zoneErr is an error about one line (and record) of the zone file.
func (z *zoneData) zoneErr(line int, record, format string, args ...any) error {
	where := z.file
	if line > 0 {
		where += ":" + strconv.Itoa(line)
	}
	if record != "" {
		where += ": " + record
	}
	return fmt.Errorf("%s: %s: %w", where, fmt.Sprintf(format, args...), ErrInvalidZoneFile)
}

// lineReader feeds the zone parser byte by byte (miekg/dns then does no
// read-ahead of its own) and tracks which line each record starts on, which
// the parser does not expose for records it accepts.
type lineReader struct {
	br       *bufio.Reader
	line     int  // newlines read so far
	content  bool // the current line has had a non-blank, non-comment byte
	comment  bool
	first    int // first line since mark() with a record on it (not a directive)
	lastLine int // last line with any content
}

func (lr *lineReader) ReadByte() (byte, error) {
	c, err := lr.br.ReadByte()
	if err != nil {
		return c, err
	}
	switch {
	case c == '\n':
		lr.line++
		lr.content, lr.comment = false, false
	case lr.content || lr.comment:
	case c == ';':
		lr.comment = true
	case c == ' ' || c == '\t' || c == '\r':
	default:
		lr.content = true
		lr.lastLine = lr.line + 1
		if lr.first == 0 && c != '$' {
			lr.first = lr.line + 1
		}
	}
	return c, nil
}

// Read is never used by the parser (it takes the io.ByteReader path) but
// makes lineReader an io.Reader.
func (lr *lineReader) Read(p []byte) (int, error) {
	for i := range p {
		c, err := lr.ReadByte()
		if err != nil {
			return i, err
		}
		p[i] = c
	}
	return len(p), nil
}

func (lr *lineReader) mark() { lr.first = 0 }

// recordLine is the line the record returned last started on; records made
// by $GENERATE get the directive's line.
func (lr *lineReader) recordLine() int {
	if lr.first != 0 {
		return lr.first
	}
	return lr.lastLine
}

// parseZone reads the whole file into RRsets.
func parseZone(ctx context.Context, zone, file string, src io.Reader) (*zoneData, error) {
	z := &zoneData{zone: zone, file: file}
	lr := &lineReader{br: bufio.NewReaderSize(src, 64<<10)}
	zp := dns.NewZoneParser(lr, zone, file)
	zp.SetDefaultTTL(defaultTTL)
	zp.SetIncludeAllowed(false)
	// Room for the largest record: owner (255) + header (10) + rdata (65535).
	buf := make([]byte, 66<<10)
	count := 0
	for {
		lr.mark()
		rr, ok := zp.Next()
		if !ok {
			break
		}
		if count++; count&4095 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		if err := z.add(rr, lr.recordLine(), buf); err != nil {
			return nil, err
		}
	}
	if err := zp.Err(); err != nil {
		if strings.Contains(err.Error(), "$INCLUDE") {
			return nil, fmt.Errorf("%w: %w ($INCLUDE is not supported: a zone is imported from one self-contained file)", ErrInvalidZoneFile, err)
		}
		return nil, fmt.Errorf("%w: %w", ErrInvalidZoneFile, err)
	}
	if len(z.recs) == 0 {
		return nil, z.zoneErr(0, "", "no records: refusing to import an empty zone")
	}
	return z, nil
}

// add checks one parsed record and appends it.
func (z *zoneData) add(rr dns.RR, line int, buf []byte) error {
	h := rr.Header()
	typ := h.Rrtype
	name := h.Name + " " + dns.Type(typ).String()
	if h.Class != dns.ClassINET {
		return z.zoneErr(line, name, "class %s is not supported (only IN)", dns.Class(h.Class))
	}
	switch typ {
	case dns.TypeNone, dns.TypeOPT, dns.TypeTKEY, dns.TypeTSIG, dns.TypeIXFR, dns.TypeAXFR,
		dns.TypeMAILB, dns.TypeMAILA, dns.TypeANY:
		return z.zoneErr(line, name, "type %s cannot appear in a zone", dns.Type(typ))
	}
	r := record{typ: typ, ttl: h.Ttl, line: int32(line)}
	if h.Name == z.prevName && z.prevName != "" {
		r.keyOff, r.keyLen = z.prevKeyOff, uint8(z.prevKeyN)
	} else {
		owner, err := ownerInZone(h.Name, z.zone)
		if err != nil {
			return z.zoneErr(line, name, "%v", err)
		}
		off := len(z.keyArena)
		z.keyArena = appendPathKey(z.keyArena, owner, z.zone)
		n := len(z.keyArena) - off
		if n > 255 || uint64(len(z.keyArena)) > math.MaxUint32 {
			return z.zoneErr(line, name, "zone too large to import in one piece")
		}
		r.keyOff, r.keyLen = uint32(off), uint8(n)
		z.prevName, z.prevKeyOff, z.prevKeyN = h.Name, uint32(off), uint32(n)
	}
	end, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		return z.zoneErr(line, name, "cannot encode record data: %v", err)
	}
	rdlen := int(h.Rdlength)
	if rdlen == 0 {
		return z.zoneErr(line, name, "record has no data")
	}
	if uint64(len(z.rdata)+rdlen) > math.MaxUint32 {
		return z.zoneErr(line, name, "zone too large to import in one piece (over 4 GiB of record data)")
	}
	r.rdOff, r.rdLen = uint32(len(z.rdata)), uint16(rdlen)
	z.rdata = append(z.rdata, buf[end-rdlen:end]...)
	z.recs = append(z.recs, r)
	return nil
}

// ownerInZone lowercases an owner name (ASCII only, as DNS compares names)
// and checks that it is the zone or below it, label-wise, so that
// xexample.com. is not taken for a name in example.com.
func ownerInZone(name, zone string) (string, error) {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == '\\' {
			if escapedDot(name[i:]) {
				return "", errors.New("owner name has a label containing an escaped dot, which cannot be a tree label")
			}
			return "", errors.New("owner name uses an escape (\\X or \\DDD); escaped owner names are not supported")
		}
		if c <= ' ' || c == 0x7f {
			return "", fmt.Errorf("owner name has byte 0x%02x", c)
		}
	}
	owner := asciiLower(name)
	if owner == zone {
		return owner, nil
	}
	if len(owner) <= len(zone) || !strings.HasSuffix(owner, zone) || owner[len(owner)-len(zone)-1] != '.' {
		return "", fmt.Errorf("owner is outside the zone %s", zone)
	}
	return owner, nil
}

// escapedDot reports whether s starts with an escape that stands for '.'.
func escapedDot(s string) bool {
	return strings.HasPrefix(s, `\.`) || strings.HasPrefix(s, `\046`)
}

// asciiLower lowercases A-Z only, returning s itself (no allocation) when
// it has no capitals.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; c >= 'A' && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// appendPathKey appends an owner's tree path below the apex as labels from
// the apex down, each followed by a 0 byte (owner labels never hold one).
// Sorting these keys bytewise puts every name right after its ancestors and
// keeps each subtree contiguous, which lets build close trees bottom-up
// with a stack. The apex has the empty key.
func appendPathKey(dst []byte, owner, zone string) []byte {
	rel := owner[:len(owner)-len(zone)] // "a.b.c." or "" at the apex
	end := len(rel) - 1                 // the dot after the last label
	for end > 0 {
		start := strings.LastIndexByte(rel[:end], '.') + 1
		dst = append(dst, rel[start:end]...)
		dst = append(dst, 0)
		end = start - 1
	}
	return dst
}

// sortRecords orders the records by (path key, type, rdata).
func (z *zoneData) sortRecords() {
	z.keys, z.keyArena = string(z.keyArena), nil
	slices.SortFunc(z.recs, func(a, b record) int {
		if c := strings.Compare(z.key(&a), z.key(&b)); c != 0 {
			return c
		}
		if a.typ != b.typ {
			return int(a.typ) - int(b.typ)
		}
		return bytes.Compare(z.rd(&a), z.rd(&b))
	})
}

// rrsetEnd returns the end of the RRset starting at recs[i].
func (z *zoneData) rrsetEnd(i int) int {
	k, t := z.key(&z.recs[i]), z.recs[i].typ
	j := i + 1
	for j < len(z.recs) && z.recs[j].typ == t && z.key(&z.recs[j]) == k {
		j++
	}
	return j
}

// check runs over the sorted records before anything is written. It counts
// RRsets and root children, and enforces the per-owner rules: a CNAME
// stands alone (RFC 1034 §3.6.2) apart from the DNSSEC records RFC 4035
// §2.5 allows beside it, and a name has one CNAME record (identical copies
// collapse into one).
func (z *zoneData) check() error {
	prevFirst := "\xff" // no first label looks like this
	for i := 0; i < len(z.recs); {
		// One owner: recs[i:j].
		key := z.key(&z.recs[i])
		j := i + 1
		for j < len(z.recs) && z.key(&z.recs[j]) == key {
			j++
		}
		if first, _, _ := strings.Cut(key, "\x00"); key != "" && first != prevFirst {
			z.rootLabels++
			prevFirst = first
		}
		cname, other := -1, -1 // RRset starts
		for k := i; k < j; k = z.rrsetEnd(k) {
			z.rrsets++
			switch z.recs[k].typ {
			case dns.TypeCNAME:
				cname = k
				if n := z.distinct(k, z.rrsetEnd(k)); n > 1 {
					return z.zoneErr(int(z.firstLine(k)), z.owner(key)+" CNAME",
						"%d different CNAME records at one name; a name has at most one CNAME", n)
				}
			case dns.TypeRRSIG, dns.TypeNSEC:
			default:
				if other < 0 {
					other = k
				}
			}
		}
		if cname >= 0 && other >= 0 {
			cl, ol := z.firstLine(cname), z.firstLine(other)
			return z.zoneErr(int(max(cl, ol)), z.owner(key)+" CNAME",
				"a CNAME cannot be beside other data (%s at line %d, CNAME at line %d)", dns.Type(z.recs[other].typ), ol, cl)
		}
		i = j
	}
	return nil
}

// firstLine is the lowest line among the records of the RRset at i: the
// RRset's first appearance in the file.
func (z *zoneData) firstLine(i int) int32 {
	line := z.recs[i].line
	for k, end := i+1, z.rrsetEnd(i); k < end; k++ {
		line = min(line, z.recs[k].line)
	}
	return line
}

// distinct counts the different rdata among recs[i:j] (sorted).
func (z *zoneData) distinct(i, j int) int {
	n := 1
	for k := i + 1; k < j; k++ {
		if !bytes.Equal(z.rd(&z.recs[k-1]), z.rd(&z.recs[k])) {
			n++
		}
	}
	return n
}

// frame is a tree under construction at one depth of the current path.
type frame struct {
	label        string
	subs, leaves []TreeEntry
}

// build writes every blob and tree into b (only hashes them when b is nil)
// and returns the root tree's hash.
// RRsets are visited in path order, so each tree is complete when the walk
// leaves its path and is encoded then: memory holds one path of open trees
// (plus the root's entries), never the whole tree.
//
// Longer than 80 lines on purpose: the explicit stack of open trees (no
// recursion, bounded memory) is one loop that opens, fills and closes
// frames, and splitting it would pass the stack around.
func (z *zoneData) build(ctx context.Context, b *Batch) (Hash, error) {
	z.blobs, z.trees = 0, 0
	// The root's subtree entries are the bulk of a flat zone's memory;
	// sizing them once avoids the copies of a growing slice.
	stack := []*frame{{subs: make([]TreeEntry, 0, z.rootLabels+16)}}
	var pool []*frame // frames reused by depth, so deep zones do not allocate per name
	var rd [][]byte

	closeTop := func() error {
		f := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		h, err := z.writeTree(b, f)
		if err != nil {
			return err
		}
		parent := stack[len(stack)-1]
		parent.subs = append(parent.subs, TreeEntry{Kind: EntrySubtree, Name: f.label, Hash: h})
		return nil
	}

	for i, n := 0, 0; i < len(z.recs); n++ {
		if n&4095 == 4095 {
			if err := ctx.Err(); err != nil {
				return ZeroHash, err
			}
		}
		j := z.rrsetEnd(i)
		r := &z.recs[i]
		key := z.key(r)
		// Depth shared with the open path.
		pos, depth := 0, 0
		for pos < len(key) {
			end := pos + strings.IndexByte(key[pos:], 0)
			if depth+1 < len(stack) && stack[depth+1].label == key[pos:end] {
				depth++
				pos = end + 1
				continue
			}
			break
		}
		for len(stack)-1 > depth {
			if err := closeTop(); err != nil {
				return ZeroHash, err
			}
		}
		for pos < len(key) {
			end := pos + strings.IndexByte(key[pos:], 0)
			d := len(stack)
			for len(pool) <= d {
				pool = append(pool, &frame{})
			}
			f := pool[d]
			f.label, f.subs, f.leaves = key[pos:end], f.subs[:0], f.leaves[:0]
			stack = append(stack, f)
			pos = end + 1
		}

		// recs[i:j] is one RRset in rdata order: drop identical records,
		// take the lowest TTL.
		rd = rd[:0]
		ttl := r.ttl
		for k := i; k < j; k++ {
			d := z.rd(&z.recs[k])
			if k == i || !bytes.Equal(d, rd[len(rd)-1]) {
				rd = append(rd, d)
			}
			ttl = min(ttl, z.recs[k].ttl) // RFC 2181 §5.2: one TTL per RRset, the lowest given
		}
		owner := z.owner(key)
		if len(rd) > 0xffff {
			return ZeroHash, z.zoneErr(int(z.firstLine(i)), owner+" "+dns.Type(r.typ).String(), "%d records in one RRset, at most 65535", len(rd))
		}
		blob := Blob{Owner: owner, Class: dns.ClassINET, Type: r.typ, TTL: ttl, RData: rd}
		payload, err := blob.Encode()
		if err != nil {
			return ZeroHash, z.zoneErr(int(z.firstLine(i)), owner+" "+dns.Type(r.typ).String(), "%v", err)
		}
		h, err := z.put(b, KindBlob, payload)
		if err != nil {
			return ZeroHash, fmt.Errorf("import %s: store blob: %w", z.file, err)
		}
		z.blobs++
		top := stack[len(stack)-1]
		top.leaves = append(top.leaves, TreeEntry{Kind: EntryLeaf, Name: dns.Type(r.typ).String(), Hash: h})
		i = j
	}
	// Every blob is written; release the records before the largest
	// trees (the root of a flat zone) are encoded. The path keys stay:
	// the open frames' labels point into them. A hashing-only pass keeps
	// them for the writing pass that may follow.
	if b != nil {
		z.recs, z.rdata = nil, nil
	}
	for len(stack) > 1 {
		if err := closeTop(); err != nil {
			return ZeroHash, err
		}
	}
	return z.writeTree(b, stack[0])
}

// writeTree encodes and stores one finished tree node. Subtrees arrive in
// label order and leaves in type-code order; Tree.Encode puts them into
// canonical order either way.
func (z *zoneData) writeTree(b *Batch, f *frame) (Hash, error) {
	// Subtrees sort before leaves, so the leaves (few, at most one per
	// type) go after the subtrees in the frame's own slice.
	slices.SortFunc(f.leaves, func(a, b TreeEntry) int { return strings.Compare(a.Name, b.Name) })
	f.subs = append(f.subs, f.leaves...)
	t := Tree{Entries: f.subs}
	payload, err := t.Encode()
	if err != nil {
		return ZeroHash, fmt.Errorf("import %s: tree %q: %w", z.file, f.label, err)
	}
	h, err := z.put(b, KindTree, payload)
	if err != nil {
		return ZeroHash, fmt.Errorf("import %s: store tree: %w", z.file, err)
	}
	z.trees++
	return h, nil
}

// put stores an object through the batch, or only hashes it when b is nil
// (the hashing-only pass of a re-import).
func (z *zoneData) put(b *Batch, kind Kind, payload []byte) (Hash, error) {
	if b == nil {
		return HashObject(kind, payload), nil
	}
	return b.PutObject(kind, payload)
}
