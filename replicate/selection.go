package replicate

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// Selection is what a replica holds: the branches whose zone matches an
// entry of Zones and whose name matches an entry of Branches (no entries
// match everything), plus every pinned branch. Tags are selected by zone
// alone. It is the one definition of "selected" used by Plan (and so by
// every pull, the CLI and the provider's plan and apply) and by the
// provider's zonegit_refs data source.
//
// A filter entry matches a name equal to it, and every name it matches as
// a path.Match glob. So an exact name is always selected by itself, even
// one holding glob metacharacters (a branch "rel[1]" is selected by
// "rel[1]", which as a glob also matches "rel1"), and an entry that is not
// a valid glob (a branch "x[" ) is an exact name.
type Selection struct {
	Zones    []string
	Branches []string
	// Pins map "<zone>/<branch>" to a commit hash (hex).
	Pins map[string]string
}

// Selection returns the selection of a pull.
func (o PullOptions) Selection() Selection {
	return Selection{Zones: o.Zones, Branches: o.Branches, Pins: o.Pins}
}

// validateFilters checks every filter entry and returns an error naming
// the first bad one: a filter that could never match a valid name is a
// mistake, not a filter that silently selects nothing. (Plan checks the
// pins as it parses them.)
func (s Selection) validateFilters() error {
	for _, z := range s.Zones {
		if err := ValidateZonePattern(z); err != nil {
			return err
		}
	}
	for _, b := range s.Branches {
		if err := ValidateBranchPattern(b); err != nil {
			return err
		}
	}
	return nil
}

// Zone reports whether zone passes the zone filter.
func (s Selection) Zone(zone string) bool { return matchAny(s.Zones, zone) }

// Matches reports whether the filters select the branch, ignoring pins.
func (s Selection) Matches(zone, name string) bool {
	return matchAny(s.Zones, zone) && matchAny(s.Branches, name)
}

// Selects reports whether the branch is pinned or matched by the filters.
func (s Selection) Selects(zone, name string) bool {
	if _, pinned := s.Pins[zone+"/"+name]; pinned {
		return true
	}
	return s.Matches(zone, name)
}

// Unselected returns the branches of local that the selection does not
// select: left over from a pin that was removed or a filter that was
// narrowed.
func (s Selection) Unselected(local []repo.Ref) []repo.Ref {
	var out []repo.Ref
	for _, r := range local {
		if !s.Selects(r.Zone, r.Name) {
			out = append(out, r)
		}
	}
	return out
}

// matchAny reports whether name equals or glob-matches one of pats; no
// pats match everything.
func matchAny(pats []string, name string) bool {
	if len(pats) == 0 {
		return true
	}
	for _, p := range pats {
		if matchName(p, name) {
			return true
		}
	}
	return false
}

// matchName is the match of one filter entry: equal, or a glob match. An
// entry that is not a valid glob matches only itself.
func matchName(pat, name string) bool {
	if pat == name {
		return true
	}
	ok, err := path.Match(pat, name)
	return err == nil && ok
}

// globMeta are the characters that make a filter entry a glob pattern.
const globMeta = `*?[\`

// ValidateZonePattern checks one zone filter entry. An exact zone must be
// a valid zone name (lowercase, with the trailing dot); a glob must be a
// valid pattern that can match such a name: no upper case, no characters
// a zone cannot hold, and ending in the dot (or a wildcard that can match
// it). The error names the entry and, where it can, suggests the fix.
func ValidateZonePattern(p string) error {
	bad := func(why string) error {
		return fmt.Errorf("zone filter %q: %s", clipStr(p), why)
	}
	if p == "" {
		return bad(`empty; remove it, or use "*" for every zone`)
	}
	if lower := strings.ToLower(p); lower != p {
		return bad(fmt.Sprintf("zone names are lower case: use %q", withDot(lower)))
	}
	if !strings.ContainsAny(p, globMeta) {
		if err := repo.ValidateZone(p); err != nil {
			if !strings.HasSuffix(p, ".") {
				return bad(fmt.Sprintf("zone names end with a dot: use %q", p+"."))
			}
			return fmt.Errorf("zone filter: %w", err)
		}
		return nil
	}
	if _, err := path.Match(p, ""); err != nil {
		return bad(fmt.Sprintf("not a valid glob pattern (%v); use an exact zone such as \"example.com.\" or a pattern with *, ? and [...]", err))
	}
	for _, c := range literals(p) {
		if !isZoneByte(c) {
			return bad(fmt.Sprintf("character %q cannot occur in a zone name (letters, digits, '-', '_' and '.')", c))
		}
	}
	if last := p[len(p)-1]; !strings.ContainsRune(".*?]", rune(last)) {
		return bad(fmt.Sprintf("zone names end with a dot, so this matches nothing: use %q", p+"."))
	}
	return nil
}

// withDot adds the trailing dot a zone name needs, for suggestions.
func withDot(z string) string {
	if strings.HasSuffix(z, ".") || strings.HasSuffix(z, "*") {
		return z
	}
	return z + "."
}

// isZoneByte reports whether c may occur in a zone name.
func isZoneByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
}

// literals returns the bytes a valid glob matches literally: everything
// outside bracket expressions that is not a wildcard, escapes resolved.
func literals(p string) []byte {
	var out []byte
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '*', '?':
		case '\\':
			if i+1 < len(p) {
				i++
				out = append(out, p[i])
			}
		case '[':
			// Skip to the closing bracket, which path.Match has checked
			// is there: the first ']' not escaped with a backslash.
			for i++; i < len(p) && p[i] != ']'; i++ {
				if p[i] == '\\' {
					i++
				}
			}
		default:
			out = append(out, c)
		}
	}
	return out
}

// ValidateBranchPattern checks one branch filter entry: a valid branch
// name (matched exactly, whatever characters it holds) or a valid glob
// pattern. Entries that no branch name could match (empty, with '/',
// spaces or control characters) are errors naming them.
func ValidateBranchPattern(p string) error {
	bad := func(why string) error {
		return fmt.Errorf("branch filter %q: %s", clipStr(p), why)
	}
	if p == "" {
		return bad(`empty; remove it, or use "*" for every branch`)
	}
	if strings.Contains(p, "/") {
		return bad(`branch names contain no '/'; a filter selects branch names in every selected zone, so put the zone in zones`)
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c == 0x7f {
			return bad(fmt.Sprintf("contains byte 0x%02x (control or space), which no branch name holds", c))
		}
	}
	if repo.ValidateBranch(p) == nil {
		return nil // an exact name, possibly also a glob
	}
	if _, err := path.Match(p, ""); err != nil {
		return bad(fmt.Sprintf("neither a branch name nor a valid glob pattern (%v)", err))
	}
	return nil
}

// ValidatePin checks one pin: a "<zone>/<branch>" key with a valid zone
// and branch name, and a 64-hex commit hash that is not zero.
func ValidatePin(key, hash string) error {
	_, err := parsePin(key, hash)
	return err
}

// parsePins validates every pin (in key order, so the error is stable).
func parsePins(pins map[string]string) (map[string]repo.Hash, error) {
	out := make(map[string]repo.Hash, len(pins))
	keys := make([]string, 0, len(pins))
	for k := range pins {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		h, err := parsePin(k, pins[k])
		if err != nil {
			return nil, err
		}
		out[k] = h
	}
	return out, nil
}

func parsePin(key, hash string) (repo.Hash, error) {
	zone, name, ok := repo.SplitRefPath(key)
	if !ok {
		return repo.Hash{}, fmt.Errorf("pin %q: key must be \"<zone>/<branch>\", for example \"example.com./main\"", clipStr(key))
	}
	if err := repo.ValidateZone(zone); err != nil {
		if !strings.HasSuffix(zone, ".") && repo.ValidateZone(zone+".") == nil {
			return repo.Hash{}, fmt.Errorf("pin %q: zone names end with a dot: use %q", clipStr(key), zone+"./"+name)
		}
		return repo.Hash{}, fmt.Errorf("pin %q: %w", clipStr(key), err)
	}
	if err := repo.ValidateBranch(name); err != nil {
		return repo.Hash{}, fmt.Errorf("pin %q: %w", clipStr(key), err)
	}
	h, err := repo.ParseHash(strings.TrimSpace(hash))
	if err != nil {
		return repo.Hash{}, fmt.Errorf("pin %q: %w", clipStr(key), err)
	}
	if h.IsZero() {
		return repo.Hash{}, fmt.Errorf("pin %q: the zero hash is not a commit", clipStr(key))
	}
	return h, nil
}

// QuoteName returns a filter entry that selects name: name itself when it
// holds no glob metacharacters, otherwise name with each of them escaped,
// so that as a glob it matches name alone (a branch "*" must not become a
// filter selecting every branch).
func QuoteName(name string) string {
	if !strings.ContainsAny(name, globMeta+"]") {
		return name
	}
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		if strings.IndexByte(globMeta+"]", name[i]) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(name[i])
	}
	return b.String()
}
