package store

import (
	"bytes"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// releaseMapped drops the resident pages of the size bytes of file mapping
// at addr from the process's page tables (MADV_DONTNEED; the file's data is
// untouched). A failure only leaves the pages resident.
func releaseMapped(addr uintptr, size int64) {
	if size > 0 {
		_, _, _ = unix.Syscall(unix.SYS_MADVISE, addr, uintptr(size), unix.MADV_DONTNEED)
	}
}

// residentFileBytes returns how many bytes of file-backed (and shared)
// memory the process has resident: the third field of /proc/self/statm, in
// pages. It returns -1 if it cannot tell.
func residentFileBytes() int64 {
	raw, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return -1
	}
	f := bytes.Fields(raw)
	if len(f) < 3 {
		return -1
	}
	pages, err := strconv.ParseInt(string(f[2]), 10, 64)
	if err != nil {
		return -1
	}
	return pages * int64(os.Getpagesize())
}
