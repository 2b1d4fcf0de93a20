package repo

import (
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// RRset is one blob of a zone in presentation form, as a reader of the
// zone's content (not its storage) wants it.
type RRset struct {
	Name  string   // owner FQDN, lowercase, with the trailing dot
	Type  string   // RR type mnemonic ("A", "MX", "TYPE65280")
	TTL   uint32   // seconds
	RData []string // each record's data in master-file form, in the blob's (canonical) order
	// RRs are the records themselves, for callers that print or compare
	// them with miekg/dns.
	RRs []dns.RR
}

// Key is "<name> <type>", the identity of an RRset within a zone.
func (s *RRset) Key() string { return s.Name + " " + s.Type }

// RRs unpacks the blob's records with miekg/dns (the library that packed
// them at import). A record whose data does not unpack to exactly its
// bytes is an error naming the RRset.
func (b *Blob) RRs() ([]dns.RR, error) {
	out := make([]dns.RR, 0, len(b.RData))
	for i, rd := range b.RData {
		h := dns.RR_Header{Name: b.Owner, Rrtype: b.Type, Class: b.Class, Ttl: b.TTL, Rdlength: uint16(len(rd))}
		rr, off, err := dns.UnpackRRWithHeader(h, rd, 0)
		if err != nil {
			return nil, fmt.Errorf("blob %s %s: record %d: %v: %w", b.Owner, dns.Type(b.Type), i, err, ErrCorrupt)
		}
		if off != len(rd) {
			return nil, fmt.Errorf("blob %s %s: record %d: %d trailing bytes of record data: %w", b.Owner, dns.Type(b.Type), i, len(rd)-off, ErrCorrupt)
		}
		out = append(out, rr)
	}
	return out, nil
}

// RRset returns the blob in presentation form.
func (b *Blob) RRset() (*RRset, error) {
	rrs, err := b.RRs()
	if err != nil {
		return nil, err
	}
	s := &RRset{Name: b.Owner, Type: dns.Type(b.Type).String(), TTL: b.TTL, RRs: rrs, RData: make([]string, len(rrs))}
	for i, rr := range rrs {
		// An RR's text is its header's text followed by its data.
		s.RData[i] = strings.TrimPrefix(rr.String(), rr.Header().String())
	}
	return s, nil
}

// ZoneRecords reads the RRsets of zone in commit (or, when commit is a tag
// object, the commit it names) from rd, decoding every tree and blob
// strictly. The order is the zone's canonical DNS order (RFC 4034 §6.1):
// the apex first, each name before the names below it, sibling labels in
// byte order; within a name, RRsets in the order of their type mnemonics.
// It is a pre-order walk of the tree with each node's leaves before its
// subtrees. A blob whose owner is not the name its path spells, or whose
// type is not its leaf's name, is an error: the commit is not one of this
// zone, or it is damaged.
//
// keep, when not nil, is asked about each owner name on the way down (the
// apex first): self says whether to read the name's RRsets, descend whether
// to look below it. A names filter so reads only the trees it needs.
func ZoneRecords(rd Reader, commit Hash, zone string, keep func(name string) (self, descend bool)) (tree Hash, sets []*RRset, err error) {
	kind, payload, err := rd.Get(commit)
	if err != nil {
		return ZeroHash, nil, fmt.Errorf("read commit %s: %w", commit, err)
	}
	if kind == KindTag {
		t, err := DecodeTag(payload)
		if err != nil {
			return ZeroHash, nil, fmt.Errorf("tag %s: %w", commit, err)
		}
		return ZoneRecords(rd, t.Object, zone, keep)
	}
	if kind != KindCommit {
		return ZeroHash, nil, fmt.Errorf("object %s is a %s, not a commit", commit, kind)
	}
	c, err := DecodeCommit(payload)
	if err != nil {
		return ZeroHash, nil, fmt.Errorf("commit %s: %w", commit, err)
	}
	self, descend := true, true
	if keep != nil {
		self, descend = keep(zone)
	}
	if err := walkZoneTree(rd, c.Tree, zone, self, descend, keep, &sets); err != nil {
		return ZeroHash, nil, fmt.Errorf("commit %s: %w", commit, err)
	}
	return c.Tree, sets, nil
}

// walkZoneTree appends the RRsets of the tree h at owner name to sets.
func walkZoneTree(rd Reader, h Hash, name string, self, descend bool, keep func(string) (bool, bool), sets *[]*RRset) error {
	kind, payload, err := rd.Get(h)
	if err != nil {
		return fmt.Errorf("tree of %s: %w", name, err)
	}
	if kind != KindTree {
		return fmt.Errorf("tree of %s (%s) is a %s: %w", name, h, kind, ErrCorrupt)
	}
	t, err := DecodeTree(payload)
	if err != nil {
		return fmt.Errorf("tree of %s (%s): %w", name, h, err)
	}
	if self {
		for _, e := range t.Entries {
			if e.Kind != EntryLeaf {
				continue
			}
			s, err := readRRset(rd, e, name)
			if err != nil {
				return err
			}
			*sets = append(*sets, s)
		}
	}
	for _, e := range t.Entries {
		if e.Kind != EntrySubtree || !descend {
			continue
		}
		child := e.Name + "." + name
		if name == "." {
			child = e.Name + "."
		}
		childSelf, childDescend := true, true
		if keep != nil {
			childSelf, childDescend = keep(child)
		}
		if !childSelf && !childDescend {
			continue
		}
		if err := walkZoneTree(rd, e.Hash, child, childSelf, childDescend, keep, sets); err != nil {
			return err
		}
	}
	return nil
}

// readRRset reads and checks the blob of leaf e at owner name.
func readRRset(rd Reader, e TreeEntry, name string) (*RRset, error) {
	kind, payload, err := rd.Get(e.Hash)
	if err != nil {
		return nil, fmt.Errorf("RRset %s %s: %w", name, e.Name, err)
	}
	if kind != KindBlob {
		return nil, fmt.Errorf("RRset %s %s (%s) is a %s: %w", name, e.Name, e.Hash, kind, ErrCorrupt)
	}
	b, err := DecodeBlob(payload)
	if err != nil {
		return nil, fmt.Errorf("RRset %s %s (%s): %w", name, e.Name, e.Hash, err)
	}
	if b.Owner != name {
		return nil, fmt.Errorf("RRset %s %s (%s): the blob's owner is %s, not the name its path in the tree spells (a commit of another zone?): %w",
			name, e.Name, e.Hash, b.Owner, ErrCorrupt)
	}
	if typ := dns.Type(b.Type).String(); typ != e.Name {
		return nil, fmt.Errorf("RRset %s %s (%s): the blob holds type %s: %w", name, e.Name, e.Hash, typ, ErrCorrupt)
	}
	return b.RRset()
}

// ZoneFileText renders RRsets as master-file text: one record per line,
// absolute names, explicit TTL and class, in the order given. miekg/dns
// parses it back to the same records.
func ZoneFileText(sets []*RRset) string {
	var sb strings.Builder
	for _, s := range sets {
		for _, rr := range s.RRs {
			sb.WriteString(rr.String())
			sb.WriteByte('\n')
		}
	}
	return sb.String()
}
