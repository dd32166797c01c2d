//go:build !linux

package store

// releaseMapped does nothing where the store does not release mapped pages.
func releaseMapped(addr uintptr, size int64) {}

// residentFileBytes returns -1: the store cannot tell where it does not
// release mapped pages.
func residentFileBytes() int64 { return -1 }
