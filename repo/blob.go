package repo

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
)

// Blob is one RRset: every record shares owner, class, type and TTL.
type Blob struct {
	Owner string   // FQDN, lowercase, with the trailing dot
	Class uint16   // 1 = IN
	Type  uint16   // RR type code
	TTL   uint32   // seconds
	RData [][]byte // uncompressed wire form of each record's data
}

const blobVersion = 1

// Encode returns the canonical payload: records sorted by their rdata bytes,
// so the same set in any order has one hash.
func (b *Blob) Encode() ([]byte, error) {
	owner, err := encodeName(b.Owner)
	if err != nil {
		return nil, err
	}
	if len(b.RData) > 0xffff {
		return nil, fmt.Errorf("blob %s: %d records exceed 65535", b.Owner, len(b.RData))
	}
	rd := make([][]byte, len(b.RData))
	copy(rd, b.RData)
	sort.Slice(rd, func(i, j int) bool { return bytes.Compare(rd[i], rd[j]) < 0 })
	n := 1 + len(owner) + 10
	for _, r := range rd {
		if len(r) > 0xffff {
			return nil, fmt.Errorf("blob %s: rdata of %d bytes exceeds 65535", b.Owner, len(r))
		}
		n += 2 + len(r)
	}
	out := make([]byte, 0, n)
	out = append(out, blobVersion)
	out = append(out, owner...)
	out = binary.BigEndian.AppendUint16(out, b.Class)
	out = binary.BigEndian.AppendUint16(out, b.Type)
	out = binary.BigEndian.AppendUint32(out, b.TTL)
	out = binary.BigEndian.AppendUint16(out, uint16(len(rd)))
	for _, r := range rd {
		out = binary.BigEndian.AppendUint16(out, uint16(len(r)))
		out = append(out, r...)
	}
	return out, nil
}

// DecodeBlob strictly decodes a blob payload: version 1, a well-formed
// uncompressed owner name, records in canonical (sorted) order, no
// truncation and no trailing bytes.
func DecodeBlob(p []byte) (*Blob, error) {
	if len(p) == 0 {
		return nil, fmt.Errorf("blob: empty payload: %w", ErrCorrupt)
	}
	if p[0] != blobVersion {
		return nil, fmt.Errorf("blob: version %d, want 1: %w", p[0], ErrCorrupt)
	}
	owner, off, err := decodeName(p, 1)
	if err != nil {
		return nil, fmt.Errorf("blob: owner: %v: %w", err, ErrCorrupt)
	}
	if len(p)-off < 10 {
		return nil, fmt.Errorf("blob %s: truncated header at byte %d: %w", owner, off, ErrCorrupt)
	}
	b := &Blob{Owner: owner}
	b.Class = binary.BigEndian.Uint16(p[off:])
	b.Type = binary.BigEndian.Uint16(p[off+2:])
	b.TTL = binary.BigEndian.Uint32(p[off+4:])
	count := int(binary.BigEndian.Uint16(p[off+8:]))
	off += 10
	b.RData = make([][]byte, 0, count)
	for i := 0; i < count; i++ {
		if len(p)-off < 2 {
			return nil, fmt.Errorf("blob %s: record %d: truncated length at byte %d: %w", owner, i, off, ErrCorrupt)
		}
		l := int(binary.BigEndian.Uint16(p[off:]))
		off += 2
		if len(p)-off < l {
			return nil, fmt.Errorf("blob %s: record %d: rdata of %d bytes truncated at byte %d: %w", owner, i, l, off, ErrCorrupt)
		}
		r := p[off : off+l : off+l]
		if i > 0 && bytes.Compare(b.RData[i-1], r) > 0 {
			return nil, fmt.Errorf("blob %s: record %d out of order: %w", owner, i, ErrCorrupt)
		}
		b.RData = append(b.RData, r)
		off += l
	}
	if off != len(p) {
		return nil, fmt.Errorf("blob %s: %d trailing bytes: %w", owner, len(p)-off, ErrCorrupt)
	}
	return b, nil
}

// encodeName packs a presentation FQDN into uncompressed wire form. Only
// plain labels are accepted (no escapes): owners reach here already validated.
func encodeName(name string) ([]byte, error) {
	if !strings.HasSuffix(name, ".") {
		return nil, fmt.Errorf("owner %q is not fully qualified", name)
	}
	if name == "." {
		return []byte{0}, nil
	}
	out := make([]byte, 0, len(name)+1)
	for _, l := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		if len(l) == 0 || len(l) > 63 {
			return nil, fmt.Errorf("owner %q: label %q must be 1..63 bytes", name, l)
		}
		out = append(out, byte(len(l)))
		out = append(out, l...)
	}
	out = append(out, 0)
	if len(out) > 255 {
		return nil, fmt.Errorf("owner %q: longer than 255 bytes in wire form", name)
	}
	return out, nil
}

// decodeName reads an uncompressed wire name at off and returns it in
// presentation form (labels joined with dots, trailing dot).
func decodeName(p []byte, off int) (string, int, error) {
	var sb strings.Builder
	start := off
	for {
		if off >= len(p) {
			return "", 0, fmt.Errorf("name truncated at byte %d", off)
		}
		l := int(p[off])
		off++
		if l == 0 {
			break
		}
		if l > 63 {
			return "", 0, fmt.Errorf("label length %d at byte %d (compression pointers are not allowed)", l, off-1)
		}
		if len(p)-off < l {
			return "", 0, fmt.Errorf("label truncated at byte %d", off)
		}
		// A dot inside a label has no presentation form without escapes,
		// which owners never use (the importer refuses escaped dots).
		if i := bytes.IndexByte(p[off:off+l], '.'); i >= 0 {
			return "", 0, fmt.Errorf("label at byte %d contains a dot", off-1)
		}
		sb.Write(p[off : off+l])
		sb.WriteByte('.')
		off += l
		if off-start > 255 {
			return "", 0, fmt.Errorf("name longer than 255 bytes")
		}
	}
	if sb.Len() == 0 {
		return ".", off, nil
	}
	return sb.String(), off, nil
}
