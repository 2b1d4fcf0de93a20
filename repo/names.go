package repo

import (
	"fmt"
	"strings"
)

// Ref name shapes (FORMAT.md).
const (
	HeadRef         = "HEAD"
	branchRefPrefix = "refs/heads/"
	tagRefPrefix    = "refs/tags/"
	zoneRefPrefix   = "refs/zonegit/zones/"
)

// ZoneMarker is the exact 32-byte value of a zone presence marker:
// ASCII "zonegit:zone:marker:v04" followed by 9 zero bytes.
var ZoneMarker = func() (h Hash) { copy(h[:], "zonegit:zone:marker:v04"); return }()

// BranchRef is the ref name of a branch: refs/heads/<zone>/<branch>.
func BranchRef(zone, branch string) string { return branchRefPrefix + zone + "/" + branch }

// TagRef is the ref name of a tag: refs/tags/<zone>/<tag>.
func TagRef(zone, tag string) string { return tagRefPrefix + zone + "/" + tag }

// ZoneRef is the ref name of a zone's presence marker.
func ZoneRef(zone string) string { return zoneRefPrefix + zone }

// ValidateZone checks that zone is a lowercase FQDN with the trailing dot,
// made of valid DNS labels (letters, digits, '-', '_'; 1..63 bytes each;
// at most 253 characters before the final dot).
func ValidateZone(zone string) error {
	bad := func(why string) error {
		return fmt.Errorf("zone %q: %s: %w", clip(zone), why, ErrInvalidName)
	}
	if zone == "" {
		return bad("empty")
	}
	if !strings.HasSuffix(zone, ".") {
		return bad("must be fully qualified with a trailing dot")
	}
	if zone == "." {
		return bad("the root zone is not supported")
	}
	if len(zone) > 254 {
		return bad("longer than 253 characters")
	}
	for _, l := range strings.Split(zone[:len(zone)-1], ".") {
		if l == "" {
			return bad("empty label")
		}
		if len(l) > 63 {
			return bad(fmt.Sprintf("label %q longer than 63 bytes", clip(l)))
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			switch {
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			case c >= 'A' && c <= 'Z':
				return bad("must be lowercase")
			default:
				return bad(fmt.Sprintf("label %q has character %q", clip(l), c))
			}
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return bad(fmt.Sprintf("label %q starts or ends with '-'", l))
		}
	}
	return nil
}

// ValidateRefName checks a branch or tag name: 1..255 bytes, no '/', no
// "..", no control bytes or spaces. what is "branch" or "tag" for the error.
func ValidateRefName(what, name string) error {
	bad := func(why string) error {
		return fmt.Errorf("%s name %q: %s: %w", what, clip(name), why, ErrInvalidName)
	}
	switch {
	case name == "":
		return bad("empty")
	case len(name) > 255:
		return bad(fmt.Sprintf("%d bytes, at most 255", len(name)))
	case strings.Contains(name, "/"):
		return bad("contains '/'")
	case strings.Contains(name, ".."):
		return bad("contains '..'")
	case name == ".":
		return bad("is '.'")
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c == 0x7f {
			return bad(fmt.Sprintf("contains byte 0x%02x (control or space)", c))
		}
	}
	return nil
}

// ValidateBranch checks a branch name.
func ValidateBranch(name string) error { return ValidateRefName("branch", name) }

// ValidateTag checks a tag name.
func ValidateTag(name string) error { return ValidateRefName("tag", name) }

// SplitRefPath splits "<zone>/<name>" at the last '/' (branch and tag names
// contain no '/'), as used by refs and by "zone/branch" keys in Terraform.
func SplitRefPath(s string) (zone, name string, ok bool) {
	i := strings.LastIndexByte(s, '/')
	if i <= 0 || i == len(s)-1 {
		return "", "", false
	}
	return s[:i], s[i+1:], true
}
