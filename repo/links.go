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
