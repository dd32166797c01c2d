package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
)

// Files of a built chain, in its cache directory.
const (
	blocksFile = "blocks.cbor" // the encoded blocks, heights 1..N in order
	indexFile  = "blocks.idx"  // per block: id (32 bytes), offset (8 bytes, big endian)
	metaFile   = "meta.cbor"   // chainMeta; written last: its presence marks a complete chain
	indexEntry = chain.HashSize + 8
	// layoutVersion names the files' layout, and the encoding of the
	// blocks they hold, in the cache key: 2 since block infos carry a
	// state root.
	layoutVersion = 2
)

// chainMeta is what a chain file needs beyond its blocks.
type chainMeta struct {
	_ struct{} `cbor:",toarray"`
	// LastQC certifies the last block; it is carried by no block.
	LastQC chain.QuorumCert
	// Infos are the executed infos of the last three blocks, oldest first.
	Infos []chain.BlockInfo
}

// chainFile is a built chain on disk with its index in memory. Blocks are
// read with ReadAt (pread), never mapped, so holding and serving the chain
// costs page cache, not resident memory. It is safe for concurrent use.
type chainFile struct {
	v       *chaintest.Validators
	genesis []byte // the genesis block's encoding: height 0
	f       *os.File
	ids     []chain.Hash       // ids[h-1]: the block of height h
	offs    []int64            // offs[h-1]: its offset; offs[N]: the file's size
	byID    map[chain.Hash]int // height
	meta    chainMeta
}

// chainDir returns the cache directory of the chain cfg describes.
func chainDir(cfg *Config) string {
	name := fmt.Sprintf("chain-l%d-n%d-t%d-s%d-v%d-seed%d",
		layoutVersion, cfg.Blocks, cfg.TxsPerBlock, cfg.TxSize, cfg.Validators, cfg.Seed)
	if cfg.StateKeys > 0 {
		// Absent for fresh keys, so that the chains cached before keep
		// their names.
		name += fmt.Sprintf("-k%d", cfg.StateKeys)
	}
	return filepath.Join(cacheDir(cfg), name)
}

func cacheDir(cfg *Config) string {
	if cfg.CacheDir != "" {
		return cfg.CacheDir
	}
	return filepath.Join(os.TempDir(), "p2pnode-bench")
}

// openChain opens the chain cfg describes, building it first if the cache
// does not hold it.
func openChain(ctx context.Context, cfg *Config, progress io.Writer) (*chainFile, error) {
	v := chaintest.NewValidators(cfg.Seed, cfg.Validators)
	dir := chainDir(cfg)
	if _, err := os.Stat(filepath.Join(dir, metaFile)); errors.Is(err, fs.ErrNotExist) {
		if err := buildChain(ctx, cfg, v, dir, progress); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("bench: chain cache: %w", err)
	} else {
		fmt.Fprintf(progress, "chain: cached in %s\n", dir)
	}
	return loadChain(v, dir, cfg.Blocks)
}

// buildChain builds the chain of cfg into dir, streaming: only the last
// block is kept in memory. It builds in a temporary directory beside dir
// and renames it, so dir is complete or absent.
func buildChain(ctx context.Context, cfg *Config, v *chaintest.Validators, dir string, progress io.Writer) (err error) {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("bench: chain cache: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".building-*")
	if err != nil {
		return fmt.Errorf("bench: chain cache: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(tmp)
		}
	}()
	bf, err := os.Create(filepath.Join(tmp, blocksFile))
	if err != nil {
		return fmt.Errorf("bench: chain cache: %w", err)
	}
	defer bf.Close()
	xf, err := os.Create(filepath.Join(tmp, indexFile))
	if err != nil {
		return fmt.Errorf("bench: chain cache: %w", err)
	}
	defer xf.Close()
	bw, xw := bufio.NewWriterSize(bf, 1<<20), bufio.NewWriterSize(xf, 1<<16)

	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: cfg.TxsPerBlock, TxSize: cfg.TxSize, Seed: cfg.Seed, Keys: cfg.StateKeys})
	parent := b.Genesis()
	var infos []chain.BlockInfo
	var off int64
	began, last := time.Now(), time.Now()
	fmt.Fprintf(progress, "chain: building %d blocks of %d × %d B into %s\n", cfg.Blocks, cfg.TxsPerBlock, cfg.TxSize, dir)
	for h := 1; h <= cfg.Blocks; h++ {
		if h%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			if time.Since(last) > 5*time.Second {
				last = time.Now()
				fmt.Fprintf(progress, "chain: %d/%d blocks built\n", h, cfg.Blocks)
			}
		}
		n := b.Child(parent, parent.Round()+1)
		enc, err := chain.Encode(n.Block)
		if err != nil {
			return err
		}
		if _, err := bw.Write(enc); err != nil {
			return fmt.Errorf("bench: write chain: %w", err)
		}
		var e [indexEntry]byte
		copy(e[:], n.Block.ID[:])
		binary.BigEndian.PutUint64(e[chain.HashSize:], uint64(off))
		if _, err := xw.Write(e[:]); err != nil {
			return fmt.Errorf("bench: write chain index: %w", err)
		}
		off += int64(len(enc))
		infos = append(infos, n.Info)
		if len(infos) > 3 {
			infos = infos[1:]
		}
		parent = n
	}
	meta, err := chain.Encode(&chainMeta{LastQC: parent.QC, Infos: infos})
	if err != nil {
		return err
	}
	for _, w := range []*bufio.Writer{bw, xw} {
		if err := w.Flush(); err != nil {
			return fmt.Errorf("bench: write chain: %w", err)
		}
	}
	// Synced before the run measures anything: the stores' fsyncs would
	// wait for the write-back of the chain's pages otherwise.
	for _, f := range []*os.File{bf, xf} {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("bench: write chain: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, metaFile), meta, 0o644); err != nil {
		return fmt.Errorf("bench: write chain: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, metaFile)); serr == nil {
			_ = os.RemoveAll(tmp) // built meanwhile by another run
			return nil
		}
		return fmt.Errorf("bench: chain cache: %w", err)
	}
	fmt.Fprintf(progress, "chain: built in %v (%.1f MB)\n", time.Since(began).Round(time.Millisecond), float64(off)/1e6)
	return nil
}

// loadChain opens the chain of n blocks in dir and reads its index.
func loadChain(v *chaintest.Validators, dir string, n int) (*chainFile, error) {
	raw, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		return nil, fmt.Errorf("bench: chain cache: %w", err)
	}
	c := &chainFile{v: v}
	if c.genesis, err = chain.Encode(v.Genesis.Block()); err != nil {
		return nil, err
	}
	if err := chain.Decode(raw, 1<<20, &c.meta); err != nil {
		return nil, fmt.Errorf("bench: chain cache meta: %w", err)
	}
	idx, err := os.ReadFile(filepath.Join(dir, indexFile))
	if err != nil {
		return nil, fmt.Errorf("bench: chain cache: %w", err)
	}
	if len(idx) != n*indexEntry {
		return nil, fmt.Errorf("bench: chain cache index of %d bytes, want %d", len(idx), n*indexEntry)
	}
	if c.f, err = os.Open(filepath.Join(dir, blocksFile)); err != nil {
		return nil, fmt.Errorf("bench: chain cache: %w", err)
	}
	st, err := c.f.Stat()
	if err != nil {
		c.f.Close()
		return nil, fmt.Errorf("bench: chain cache: %w", err)
	}
	c.ids = make([]chain.Hash, n)
	c.offs = make([]int64, n+1)
	c.byID = make(map[chain.Hash]int, n)
	for h := 1; h <= n; h++ {
		e := idx[(h-1)*indexEntry : h*indexEntry]
		copy(c.ids[h-1][:], e)
		c.offs[h-1] = int64(binary.BigEndian.Uint64(e[chain.HashSize:]))
		c.byID[c.ids[h-1]] = h
	}
	c.offs[n] = st.Size()
	return c, nil
}

// Close closes the chain's file.
func (c *chainFile) Close() error { return c.f.Close() }

// Len returns the number of blocks, genesis excluded.
func (c *chainFile) Len() int { return len(c.ids) }

// Bytes returns the encoded size of the blocks of heights [from, to].
func (c *chainFile) Bytes(from, to int) int64 { return c.offs[to] - c.offs[from-1] }

// size returns the encoded size of block h.
func (c *chainFile) size(h int) int { return int(c.offs[h] - c.offs[h-1]) }

// readRange reads the encoded blocks of heights [from, to] in one pread.
func (c *chainFile) readRange(from, to int) ([]byte, error) {
	buf := make([]byte, c.Bytes(from, to))
	if _, err := c.f.ReadAt(buf, c.offs[from-1]); err != nil {
		return nil, fmt.Errorf("bench: read blocks %d to %d: %w", from, to, err)
	}
	return buf, nil
}

// Blocks reads and decodes the blocks of heights [from, to], oldest first.
func (c *chainFile) Blocks(from, to int) ([]*chain.Block, error) {
	buf, err := c.readRange(from, to)
	if err != nil {
		return nil, err
	}
	out := make([]*chain.Block, 0, to-from+1)
	base := c.offs[from-1]
	for h := from; h <= to; h++ {
		var b chain.Block
		if err := chain.Decode(buf[c.offs[h-1]-base:c.offs[h]-base], chain.MaxEncodedBlockSize, &b); err != nil {
			return nil, fmt.Errorf("bench: block %d: %w", h, err)
		}
		out = append(out, &b)
	}
	return out, nil
}

// QC returns the QC that certifies block h: the next block's, or the last
// QC for the last block.
func (c *chainFile) QC(h int) (chain.QuorumCert, error) {
	if h == c.Len() {
		return c.meta.LastQC, nil
	}
	bs, err := c.Blocks(h+1, h+1)
	if err != nil {
		return chain.QuorumCert{}, err
	}
	return *bs[0].QC(), nil
}

// CommittedInfo returns the executed info of the block the last QC commits
// (the third block from the end): what a node that caught up has
// committed.
func (c *chainFile) CommittedInfo() chain.BlockInfo { return c.meta.Infos[0] }
