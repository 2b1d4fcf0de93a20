// Command longest-funcs lists the longest functions of the module's
// production code (test files and tools excluded), longest first, so a
// review can see which functions grew past what a reader holds at once.
//
//	go run ./tools/longest-funcs [-n 15] [-tests] [dir]
package main

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

type fn struct {
	name  string
	pos   string
	lines int
}

func main() {
	n := flag.Int("n", 15, "how many functions to list")
	tests := flag.Bool("tests", false, "include _test.go files")
	flag.Parse()
	root := "."
	if flag.NArg() > 0 {
		root = flag.Arg(0)
	}
	fns, err := collect(root, *tests)
	if err != nil {
		fmt.Fprintln(os.Stderr, "longest-funcs:", err)
		os.Exit(1)
	}
	sort.SliceStable(fns, func(i, j int) bool {
		if fns[i].lines != fns[j].lines {
			return fns[i].lines > fns[j].lines
		}
		return fns[i].pos < fns[j].pos
	})
	if len(fns) > *n {
		fns = fns[:*n]
	}
	for _, f := range fns {
		fmt.Printf("%4d  %-40s %s\n", f.lines, f.name, f.pos)
	}
}

// collect parses every Go file under root, skipping tools/, testdata/,
// hidden directories and (unless tests) test files.
func collect(root string, tests bool) ([]fn, error) {
	var out []fn
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (name == "tools" || name == "testdata" || strings.HasPrefix(name, ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || (!tests && strings.HasSuffix(name, "_test.go")) {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			start := fset.Position(fd.Pos())
			end := fset.Position(fd.End())
			out = append(out, fn{
				name:  funcName(fd),
				pos:   fmt.Sprintf("%s:%d", path, start.Line),
				lines: end.Line - start.Line + 1,
			})
		}
		return nil
	})
	return out, err
}

// funcName is Recv.Name for methods, Name for functions.
func funcName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return fd.Name.Name
	}
	t := fd.Recv.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	if ix, ok := t.(*ast.IndexExpr); ok {
		t = ix.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name + "." + fd.Name.Name
	}
	return fd.Name.Name
}
