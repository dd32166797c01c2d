package store

import "golang.org/x/sys/unix"

// releaseMapped drops the resident pages of the size bytes of file mapping
// at addr from the process's page tables (MADV_DONTNEED; the file's data is
// untouched). A failure only leaves the pages resident.
func releaseMapped(addr uintptr, size int64) {
	if size > 0 {
		_, _, _ = unix.Syscall(unix.SYS_MADVISE, addr, uintptr(size), unix.MADV_DONTNEED)
	}
}
