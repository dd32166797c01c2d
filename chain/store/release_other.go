//go:build !linux

package store

// releaseMapped does nothing where the store does not release mapped pages.
func releaseMapped(addr uintptr, size int64) {}
