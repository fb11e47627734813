//go:build unix

package importer

import (
	"io/fs"
	"strconv"
	"syscall"
)

// fileNode names the file behind st (device and inode), so a file replaced
// under the same path is not mistaken for the one read before.
func fileNode(st fs.FileInfo) string {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return strconv.FormatUint(uint64(s.Dev), 10) + "-" + strconv.FormatUint(uint64(s.Ino), 10)
	}
	return "0"
}
