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
		t, err := DecodeTree(payload)
		if err != nil {
			return nil, err
		}
		out := make([]Link, len(t.Entries))
		for i, e := range t.Entries {
			out[i] = Link{Hash: e.Hash, Kind: e.ObjectKind()}
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
	}
	_, err := Links(kind, payload)
	return err
}
