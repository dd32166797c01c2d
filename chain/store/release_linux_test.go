package store

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/p2pnode/p2pnode/chain/chaintest"
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

// TestReadsReleaseMappedPages: reads alone, scattered over a file larger
// than the release threshold, keep the store's mapping from staying
// resident; with no threshold in reach they leave most of it resident.
func TestReadsReleaseMappedPages(t *testing.T) {
	const (
		values = 8192
		size   = 4096 // bytes a value: 32 MiB in all
	)
	v := chaintest.NewValidators(73, 4)
	st, err := Open(filepath.Join(t.TempDir(), "reads.db"), v.Genesis)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	bucket := []byte("test_values")
	err = st.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket(bucket)
		if err != nil {
			return err
		}
		for i := range values {
			val := make([]byte, size) // bbolt keeps it until the commit
			val[0] = byte(i)
			if err := b.Put(binary.BigEndian.AppendUint32(nil, uint32(i)), val); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	readAll := func() int {
		t.Helper()
		var addr uintptr
		for i := range values {
			err := st.view(func(tx *bolt.Tx) error {
				addr = st.db.Info().Data
				got := tx.Bucket(bucket).Get(binary.BigEndian.AppendUint32(nil, uint32(i)))
				if len(got) != size || got[0] != byte(i) {
					return fmt.Errorf("value %d reads %d bytes starting %d", i, len(got), got[0])
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		return residentKB(t, addr)
	}

	defer func(n int64) { readReleaseEvery = n }(readReleaseEvery)
	readReleaseEvery = 1 << 40
	if kb := readAll(); kb < values*size/1024/2 {
		t.Fatalf("%d KiB of the map resident after reading every value with no release, want about %d", kb, values*size/1024)
	}
	readReleaseEvery = 1 << 20
	err = st.db.View(func(tx *bolt.Tx) error {
		releaseMapped(st.db.Info().Data, tx.Size())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	st.residentAt.Store(residentFileBytes())
	// The values lie in key order, so a fault maps in the next ones too:
	// between two looks, readCheckEvery reads map in about one value's
	// pages each.
	limit := (readReleaseEvery + 2*readCheckEvery*size) / 1024
	if kb := readAll(); kb > int(limit) {
		t.Fatalf("%d KiB of the map resident after reading every value, want at most %d", kb, limit)
	}
}
