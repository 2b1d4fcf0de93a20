package repo

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Signature is an author, committer or tagger line.
type Signature struct {
	Name  string
	Email string
	When  int64 // unix seconds
	TZ    int   // offset east of UTC in minutes (+0530 = 330)
}

func (s Signature) String() string {
	return fmt.Sprintf("%s <%s> %d %s", s.Name, s.Email, s.When, formatTZ(s.TZ))
}

func formatTZ(minutes int) string {
	sign := byte('+')
	if minutes < 0 {
		sign, minutes = '-', -minutes
	}
	return fmt.Sprintf("%c%02d%02d", sign, minutes/60, minutes%60)
}

func parseSignature(field, v string) (Signature, error) {
	var s Signature
	bad := func(why string) (Signature, error) {
		return s, fmt.Errorf("%s line %q: %s: %w", field, clip(v), why, ErrCorrupt)
	}
	end := strings.LastIndex(v, "> ")
	if end < 0 {
		return bad("no <email>")
	}
	lt := strings.LastIndex(v[:end], "<")
	if lt < 0 {
		return bad("no <email>")
	}
	s.Name = strings.TrimSuffix(v[:lt], " ")
	s.Email = v[lt+1 : end]
	rest := strings.Fields(v[end+2:])
	if len(rest) != 2 {
		return bad("want <unix seconds> <+hhmm>")
	}
	when, err := strconv.ParseInt(rest[0], 10, 64)
	if err != nil {
		return bad("bad time")
	}
	s.When = when
	tz := rest[1]
	if len(tz) != 5 || (tz[0] != '+' && tz[0] != '-') {
		return bad("bad zone offset")
	}
	hh, err1 := strconv.Atoi(tz[1:3])
	mm, err2 := strconv.Atoi(tz[3:5])
	if err1 != nil || err2 != nil || mm > 59 {
		return bad("bad zone offset")
	}
	s.TZ = hh*60 + mm
	if tz[0] == '-' {
		s.TZ = -s.TZ
	}
	return s, nil
}

// Commit is a point in a zone's history.
type Commit struct {
	Tree      Hash
	Parents   []Hash
	Author    Signature
	Committer Signature
	Selector  string // optional "selector" header; empty = absent
	Signature string // optional "signature" header value, e.g. "ed25519:<base64>"
	Message   string // exact bytes after the blank line
}

func appendMessage(b []byte, msg string) []byte {
	b = append(b, '\n')
	b = append(b, msg...)
	if msg != "" && !strings.HasSuffix(msg, "\n") {
		b = append(b, '\n')
	}
	return b
}

// Encode returns the commit payload as the zonegit tools write it. A
// non-empty message gets one trailing newline if it lacks one.
func (c *Commit) Encode() []byte {
	b := make([]byte, 0, 256+len(c.Message)+72*len(c.Parents))
	b = append(b, "version 1\ntree "...)
	b = append(b, c.Tree.String()...)
	b = append(b, '\n')
	for _, p := range c.Parents {
		b = append(b, "parent "...)
		b = append(b, p.String()...)
		b = append(b, '\n')
	}
	b = append(b, "author "+c.Author.String()+"\n"...)
	b = append(b, "committer "+c.Committer.String()+"\n"...)
	if c.Selector != "" {
		b = append(b, "selector "+c.Selector+"\n"...)
	}
	if c.Signature != "" {
		b = append(b, "signature "+c.Signature+"\n"...)
	}
	return appendMessage(b, c.Message)
}

// SignedBytes is what a commit signature covers: the commit encoded without
// its signature line.
func (c *Commit) SignedBytes() []byte {
	u := *c
	u.Signature = ""
	return u.Encode()
}

// splitHeaders separates "key value" header lines from the message.
func splitHeaders(what string, p []byte) ([]string, string, error) {
	i := bytes.Index(p, []byte("\n\n"))
	if i < 0 {
		return nil, "", fmt.Errorf("%s: no blank line after the headers: %w", what, ErrCorrupt)
	}
	lines := strings.Split(string(p[:i]), "\n")
	if lines[0] != "version 1" {
		return nil, "", fmt.Errorf("%s: first line %q, want \"version 1\": %w", what, clip(lines[0]), ErrCorrupt)
	}
	return lines[1:], string(p[i+2:]), nil
}

// DecodeCommit strictly decodes a commit: "version 1", exactly one tree,
// author and committer, well-formed parent hashes. Unknown header lines are
// ignored (forward compatibility, as the zonegit tools do).
func DecodeCommit(p []byte) (*Commit, error) {
	lines, msg, err := splitHeaders("commit", p)
	if err != nil {
		return nil, err
	}
	c := &Commit{Message: msg}
	var haveTree, haveAuthor, haveCommitter bool
	for n, line := range lines {
		key, val, ok := strings.Cut(line, " ")
		if !ok {
			key = line
		}
		switch key {
		case "tree", "parent":
			h, err := ParseHash(val)
			if err != nil {
				return nil, fmt.Errorf("commit: header line %d: %v: %w", n+2, err, ErrCorrupt)
			}
			if key == "tree" {
				if haveTree {
					return nil, fmt.Errorf("commit: two tree lines: %w", ErrCorrupt)
				}
				c.Tree, haveTree = h, true
			} else {
				c.Parents = append(c.Parents, h)
			}
		case "author", "committer":
			s, err := parseSignature(key, val)
			if err != nil {
				return nil, fmt.Errorf("commit: %w", err)
			}
			if key == "author" {
				if haveAuthor {
					return nil, fmt.Errorf("commit: two author lines: %w", ErrCorrupt)
				}
				c.Author, haveAuthor = s, true
			} else {
				if haveCommitter {
					return nil, fmt.Errorf("commit: two committer lines: %w", ErrCorrupt)
				}
				c.Committer, haveCommitter = s, true
			}
		case "selector":
			c.Selector = val
		case "signature":
			c.Signature = val
		case "":
			return nil, fmt.Errorf("commit: empty header line %d: %w", n+2, ErrCorrupt)
		}
	}
	switch {
	case !haveTree:
		return nil, fmt.Errorf("commit: no tree line: %w", ErrCorrupt)
	case !haveAuthor:
		return nil, fmt.Errorf("commit: no author line: %w", ErrCorrupt)
	case !haveCommitter:
		return nil, fmt.Errorf("commit: no committer line: %w", ErrCorrupt)
	}
	return c, nil
}

// Tag is an annotated tag object (reserved by zonegit; no tool writes one
// today, but the replication walk follows its object).
type Tag struct {
	Object  Hash
	Type    Kind // kind of Object, normally "commit"
	Name    string
	Tagger  Signature
	Message string
}

// Encode returns the tag payload.
func (t *Tag) Encode() []byte {
	b := make([]byte, 0, 200+len(t.Message))
	b = append(b, "version 1\nobject "+t.Object.String()+"\n"...)
	b = append(b, "type "+string(t.Type)+"\n"...)
	b = append(b, "tag "+t.Name+"\n"...)
	b = append(b, "tagger "+t.Tagger.String()+"\n"...)
	return appendMessage(b, t.Message)
}

// DecodeTag strictly decodes a tag: object, type, tag and tagger lines.
func DecodeTag(p []byte) (*Tag, error) {
	lines, msg, err := splitHeaders("tag", p)
	if err != nil {
		return nil, err
	}
	t := &Tag{Message: msg}
	seen := map[string]bool{}
	for _, line := range lines {
		key, val, _ := strings.Cut(line, " ")
		if seen[key] {
			return nil, fmt.Errorf("tag: two %s lines: %w", key, ErrCorrupt)
		}
		seen[key] = true
		switch key {
		case "object":
			if t.Object, err = ParseHash(val); err != nil {
				return nil, fmt.Errorf("tag: object: %v: %w", err, ErrCorrupt)
			}
		case "type":
			// FORMAT.md: a tag object names a commit ("type commit"). The
			// one place this rule lives: replication, fsck and the walk all
			// decode tags here, so none of them accepts a tag of a tag or of
			// a tree.
			if t.Type, err = ParseKind(val); err != nil || t.Type != KindCommit {
				return nil, fmt.Errorf("tag: type %q: a tag names a commit: %w", clip(val), ErrCorrupt)
			}
		case "tag":
			t.Name = val
		case "tagger":
			if t.Tagger, err = parseSignature(key, val); err != nil {
				return nil, fmt.Errorf("tag: %w", err)
			}
		}
	}
	for _, k := range []string{"object", "type", "tag", "tagger"} {
		if !seen[k] {
			return nil, fmt.Errorf("tag: no %s line: %w", k, ErrCorrupt)
		}
	}
	return t, nil
}

// DecodeSymref checks a symref payload (a ref path such as
// "refs/heads/example.com./main") and returns its target.
func DecodeSymref(p []byte) (string, error) {
	s := string(p)
	if !strings.HasPrefix(s, "refs/") {
		return "", fmt.Errorf("symref: target %q does not start with refs/: %w", clip(s), ErrCorrupt)
	}
	for _, c := range p {
		if c < 0x20 || c == 0x7f {
			return "", fmt.Errorf("symref: target %q has a control byte: %w", clip(s), ErrCorrupt)
		}
	}
	return s, nil
}
