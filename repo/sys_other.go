//go:build !(linux || darwin || freebsd || windows)

package repo

import "os"

func freeSpace(string) (int64, error) { return -1, nil }

func fileIdentOf(fi os.FileInfo) fileIdent {
	return fileIdent{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
}
