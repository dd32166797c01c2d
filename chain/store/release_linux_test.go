package store

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// residentKB returns the resident kilobytes of the mapping that starts at
// addr, from /proc/self/smaps.
func residentKB(t *testing.T, addr uintptr) int {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skip("no /proc/self/smaps")
	}
	defer f.Close()
	start := strconv.FormatUint(uint64(addr), 16) + "-"
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "-") && !strings.HasSuffix(strings.Fields(line)[0], ":") {
			in = strings.HasPrefix(line, start)
			continue
		}
		if in && strings.HasPrefix(line, "Rss:") {
			kb, err := strconv.Atoi(strings.Fields(line)[1])
			if err != nil {
				t.Fatal(err)
			}
			return kb
		}
	}
	t.Fatalf("mapping at %x not found", addr)
	return 0
}

// TestReleaseMapped: pages read through a shared file mapping are resident
// until released; after, the mapping reads the same bytes again.
func TestReleaseMapped(t *testing.T) {
	const size = 8 << 20
	path := filepath.Join(t.TempDir(), "mapped")
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i / 4096)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	addr := uintptr(unsafe.Pointer(&m[0]))
	sum := 0
	for i := 0; i < size; i += 4096 {
		sum += int(m[i])
	}
	if kb := residentKB(t, addr); kb < size/1024/2 {
		t.Fatalf("%d KiB resident after reading every page, want about %d", kb, size/1024)
	}
	releaseMapped(addr, size)
	if kb := residentKB(t, addr); kb > size/1024/8 {
		t.Fatalf("%d KiB resident after release, want about 0", kb)
	}
	again := 0
	for i := 0; i < size; i += 4096 {
		again += int(m[i])
	}
	if again != sum {
		t.Fatalf("mapping reads %d after release, %d before", again, sum)
	}
}
