package replicate

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestClientDoesNotCallServer: the client's files do not import the server
// package; only doc.go does, for the Server alias (see the package doc).
// The server cannot import the client at all (that would be a cycle), so
// together the two ends only meet in wire, walk and repo.
func TestClientDoesNotCallServer(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, imp := range af.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasSuffix(path, "/replicate/server") && f != "doc.go" {
				t.Errorf("%s imports %s: client code must not call the server", f, path)
			}
		}
	}
	if checked < 5 {
		t.Fatalf("checked %d files; run from the package directory", checked)
	}
}
