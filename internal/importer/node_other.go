//go:build !unix

package importer

import "io/fs"

// fileNode: without inodes, a replaced file is recognised by its first
// bytes alone.
func fileNode(fs.FileInfo) string { return "0" }
