package repo

import "fmt"

// Link is a reference from one object to another, with the kind the target
// must have. Replication verifies received objects against it.
type Link struct {
	Hash Hash
	Kind Kind
}

// Links decodes an object just enough to list its children: tree entries,
// a commit's tree and parents, a tag's object. Blobs and symrefs have none.
// Undecodable payloads are ErrCorrupt.
func Links(kind Kind, payload []byte) ([]Link, error) {
	switch kind {
	case KindBlob, KindSymref:
		return nil, nil
	case KindTree:
		it, err := newTreeIter(ZeroHash, payload)
		if err != nil {
			return nil, err
		}
		out := make([]Link, 0, it.left)
		for it.next() {
			out = append(out, Link{Hash: Hash(it.hash), Kind: it.kind.ObjectKind()})
		}
		if it.err != nil {
			return nil, it.err
		}
		return out, nil
	case KindCommit:
		c, err := DecodeCommit(payload)
		if err != nil {
			return nil, err
		}
		out := make([]Link, 0, 1+len(c.Parents))
		out = append(out, Link{Hash: c.Tree, Kind: KindTree})
		for _, p := range c.Parents {
			out = append(out, Link{Hash: p, Kind: KindCommit})
		}
		return out, nil
	case KindTag:
		t, err := DecodeTag(payload)
		if err != nil {
			return nil, err
		}
		return []Link{{Hash: t.Object, Kind: t.Type}}, nil
	}
	return nil, fmt.Errorf("unknown object kind %q: %w", kind, ErrCorrupt)
}

// Validate decodes payload strictly as kind and reports whether it is
// well-formed. Blobs are checked too (they have no links).
func Validate(kind Kind, payload []byte) error {
	switch kind {
	case KindBlob:
		_, err := DecodeBlob(payload)
		return err
	case KindSymref:
		_, err := DecodeSymref(payload)
		return err
	case KindTree:
		// In place: a flat zone's apex tree has one entry per name.
		it, err := newTreeIter(ZeroHash, payload)
		if err != nil {
			return err
		}
		for it.next() {
		}
		return it.err
	}
	_, err := Links(kind, payload)
	return err
}

// validator is Validate over a payload whose bytes arrive in order
// (ReadVerified): told how many have arrived, it checks each tree entry
// whose bytes all did, so that once the last byte is in only the last
// entries are left, rather than the whole tree (100,000s of entries in a
// flat zone's apex). It reads exactly what Validate reads, in the same
// order, so its verdict is Validate's; other kinds are checked at the end.
type validator struct {
	kind    Kind
	p       []byte // the whole payload's memory, filled from the front
	it      treeIter
	started bool
	err     error
}

// Bounds of the tree format (FORMAT.md): the version byte and the longest
// entry count varint; the longest entry (kind, name length, a 255-byte
// name, a hash).
const (
	maxTreeHeader = 1 + 10
	maxTreeEntry  = 2 + 255 + 32
)

// advance checks what the first filled bytes of the payload allow.
func (v *validator) advance(filled int) {
	if v.kind != KindTree || v.err != nil || v.it.done {
		return
	}
	if !v.started {
		if filled < min(len(v.p), maxTreeHeader) {
			return
		}
		v.started = true
		if v.it, v.err = newTreeIter(ZeroHash, v.p); v.err != nil {
			return
		}
	}
	for v.it.off+maxTreeEntry <= filled && v.it.next() {
	}
	if v.it.done {
		v.err = v.it.err
	}
}

// finish checks the rest of the payload, which has arrived whole, and
// returns Validate's verdict on it.
func (v *validator) finish() error {
	if v.kind != KindTree {
		return Validate(v.kind, v.p)
	}
	v.advance(len(v.p))
	if v.err != nil {
		return v.err
	}
	for v.it.next() {
	}
	return v.it.err
}
