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
	"github.com/p2pnode/p2pnode/chain/blockstore"
	"github.com/p2pnode/p2pnode/chain/ledger"
	"github.com/p2pnode/p2pnode/protocol"
)

// Files of the chunks of a chain's ledger, in their cache directory.
const (
	chunksFile      = "chunks.cbor" // framed encoded ChunkResponses
	chunkIndexFile  = "chunks.idx"  // per chunk: start, max txs, offset, length; written last
	chunkIndexEntry = 8 + 4 + 8 + 4
)

// chunkKey names a chunk request the chunk file answers.
type chunkKey struct {
	start  uint64
	maxTxs uint32
}

type chunkLoc struct {
	off int64
	n   int
}

// chunkFile holds the framed responses to the chunk requests a fresh node
// makes when it state-syncs the chain's ledger, with its index in memory.
//
// The servers' ledger is built once through chain/ledger on chain/store
// (bbolt), then the chunks are taken from it with Ledger.GetChunk and
// written here, and the bbolt file is closed and deleted. bbolt reads
// through mmap: serving from it would make the pages the servers touch
// count in this process's resident set, charging the servers' ledger to
// the syncing node's peak. Served with pread from this file, the chunks
// cost page cache only, as the blocks do. It is safe for concurrent use.
type chunkFile struct {
	f      *os.File
	target uint64 // the ledger version the chunks prove against
	order  []chunkKey
	index  map[chunkKey]chunkLoc
}

// chunkDir returns the cache directory of the chunks of cfg's chain
// fetched chunkTxs at a time.
func chunkDir(cfg *Config, chunkTxs int) string {
	return chainDir(cfg) + fmt.Sprintf("-chunks-c%d", chunkTxs)
}

// openChunks opens the chunk file of c's ledger for requests of chunkTxs
// transactions, building it first if the cache does not hold it.
func openChunks(ctx context.Context, cfg *Config, c *chainFile, chunkTxs int, progress io.Writer) (*chunkFile, error) {
	dir := chunkDir(cfg, chunkTxs)
	if _, err := os.Stat(filepath.Join(dir, chunkIndexFile)); errors.Is(err, fs.ErrNotExist) {
		if err := buildChunks(ctx, c, chunkTxs, dir, progress); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("bench: chunk cache: %w", err)
	} else {
		fmt.Fprintf(progress, "ledger: chunks cached in %s\n", dir)
	}
	return loadChunks(dir, c.CommittedInfo().Version)
}

// buildChunks builds the servers' ledger from c on a bbolt store in a
// temporary directory, and writes the responses to the requests of a node
// state-syncing it from version 0 — ranges of chunkTxs, each short answer
// followed by the request for the rest of its range, as the syncer plans
// them — to dir.
func buildChunks(ctx context.Context, c *chainFile, chunkTxs int, dir string, progress io.Writer) error {
	return buildCached(dir, chunkIndexFile, "chunk", func(tmp string) error {
		return writeChunks(ctx, c, chunkTxs, tmp, progress)
	})
}

// buildCached has write fill a temporary directory beside dir, then
// renames it to dir, so that dir is complete or absent; a dir holding
// index when the rename fails was built meanwhile by another run.
func buildCached(dir, index, what string, write func(tmp string) error) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("bench: %s cache: %w", what, err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".building-*")
	if err != nil {
		return fmt.Errorf("bench: %s cache: %w", what, err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	if err := write(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, index)); serr == nil {
			return nil
		}
		return fmt.Errorf("bench: %s cache: %w", what, err)
	}
	return nil
}

// writeChunks builds the servers' ledger in dir, writes the chunk file and
// its index there, and deletes the ledger.
func writeChunks(ctx context.Context, c *chainFile, chunkTxs int, dir string, progress io.Writer) (err error) {
	began := time.Now()
	fmt.Fprintf(progress, "ledger: building the servers' ledger of %d blocks\n", c.Len())
	dbPath := filepath.Join(dir, "ledger.db")
	o, err := blockstore.Open(dbPath, c.v.Genesis, blockstore.Config{})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, o.Disk.Close(), os.Remove(dbPath)) }()
	if err := insertAll(ctx, c, o.Blocks, 256); err != nil {
		return err
	}
	l := o.Ledger
	target := c.CommittedInfo().Version
	if got := l.Committed(); got != c.CommittedInfo() {
		return fmt.Errorf("bench: servers' ledger committed round %d version %d, want round %d version %d",
			got.Round, got.Version, c.CommittedInfo().Round, target)
	}
	fmt.Fprintf(progress, "ledger: %d transactions in %v; writing chunks\n", target, time.Since(began).Round(time.Millisecond))

	cf, err := os.Create(filepath.Join(dir, chunksFile))
	if err != nil {
		return fmt.Errorf("bench: chunk cache: %w", err)
	}
	defer cf.Close()
	w := bufio.NewWriterSize(cf, 1<<20)
	var idx []byte
	var off int64
	var emit func(start, end uint64) error
	emit = func(start, end uint64) error {
		chunk, err := l.GetChunk(start, target, end-start)
		if err != nil {
			return fmt.Errorf("bench: chunk at %d: %w", start, err)
		}
		body, err := chain.Encode(&protocol.ChunkResponse{Status: protocol.StatusSucceeded, Chunk: chunk})
		if err != nil {
			return err
		}
		frame := binary.AppendUvarint(make([]byte, 0, len(body)+binary.MaxVarintLen64), uint64(len(body)))
		frame = append(frame, body...)
		if _, err := w.Write(frame); err != nil {
			return fmt.Errorf("bench: write chunks: %w", err)
		}
		idx = binary.BigEndian.AppendUint64(idx, start)
		idx = binary.BigEndian.AppendUint32(idx, uint32(end-start))
		idx = binary.BigEndian.AppendUint64(idx, uint64(off))
		idx = binary.BigEndian.AppendUint32(idx, uint32(len(frame)))
		off += int64(len(frame))
		if chunk.End() < end {
			return emit(chunk.End(), end)
		}
		return nil
	}
	for next := uint64(0); next < target; {
		if err := ctx.Err(); err != nil {
			return err
		}
		end := min(next+uint64(chunkTxs), target)
		if err := emit(next, end); err != nil {
			return err
		}
		next = end
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("bench: write chunks: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, chunkIndexFile), idx, 0o644); err != nil {
		return fmt.Errorf("bench: write chunks: %w", err)
	}
	fmt.Fprintf(progress, "ledger: %d chunks (%.1f MB) in %v\n", len(idx)/chunkIndexEntry, float64(off)/1e6, time.Since(began).Round(time.Millisecond))
	return nil
}

// insertAll inserts the whole chain of c into s, batch blocks at a time,
// each batch with the QC that certifies its last block (the next block's,
// or the last QC), then the last QC: s commits all but the last two
// blocks, and its state tree is settled. The blocks are trusted (they are
// the bench's own).
func insertAll(ctx context.Context, c *chainFile, s *blockstore.Store, batch int) error {
	for from := 1; from <= c.Len(); from += batch {
		if err := ctx.Err(); err != nil {
			return err
		}
		to := min(from+batch-1, c.Len())
		blocks, err := c.Blocks(from, min(to+1, c.Len()))
		if err != nil {
			return err
		}
		cert := &c.meta.LastQC
		if len(blocks) > to-from+1 {
			cert, blocks = blocks[len(blocks)-1].QC(), blocks[:len(blocks)-1]
		}
		if err := s.InsertChainCertified(blocks, cert); err != nil {
			return err
		}
	}
	if err := s.InsertQC(c.meta.LastQC); err != nil {
		return err
	}
	return s.Ledger().Settle(ctx)
}

// loadChunks opens the chunk file in dir, whose chunks prove against the
// ledger of target transactions.
func loadChunks(dir string, target uint64) (*chunkFile, error) {
	idx, err := os.ReadFile(filepath.Join(dir, chunkIndexFile))
	if err != nil {
		return nil, fmt.Errorf("bench: chunk cache: %w", err)
	}
	if len(idx)%chunkIndexEntry != 0 {
		return nil, fmt.Errorf("bench: chunk cache index of %d bytes", len(idx))
	}
	f, err := os.Open(filepath.Join(dir, chunksFile))
	if err != nil {
		return nil, fmt.Errorf("bench: chunk cache: %w", err)
	}
	cf := &chunkFile{f: f, target: target, index: make(map[chunkKey]chunkLoc, len(idx)/chunkIndexEntry)}
	for ; len(idx) > 0; idx = idx[chunkIndexEntry:] {
		k := chunkKey{start: binary.BigEndian.Uint64(idx), maxTxs: binary.BigEndian.Uint32(idx[8:])}
		loc := chunkLoc{off: int64(binary.BigEndian.Uint64(idx[12:])), n: int(binary.BigEndian.Uint32(idx[20:]))}
		cf.order = append(cf.order, k)
		cf.index[k] = loc
	}
	return cf, nil
}

// Close closes the chunk file.
func (cf *chunkFile) Close() error { return cf.f.Close() }

// frame reads the framed response stored for k.
func (cf *chunkFile) frame(k chunkKey) ([]byte, bool, error) {
	loc, ok := cf.index[k]
	if !ok {
		return nil, false, nil
	}
	buf := make([]byte, loc.n)
	if _, err := cf.f.ReadAt(buf, loc.off); err != nil {
		return nil, false, fmt.Errorf("bench: read chunk at %d: %w", k.start, err)
	}
	return buf, true, nil
}

// response returns the framed response to req, and false if the file does
// not hold it: the response is then an honest refusal
// (StatusNotEnoughBlocks) and the client asks another server.
func (cf *chunkFile) response(req *protocol.ChunkRequest) ([]byte, bool, error) {
	status := protocol.StatusBadRequest
	if req.Validate() == nil {
		if req.TargetVersion == cf.target {
			frame, ok, err := cf.frame(chunkKey{start: req.StartVersion, maxTxs: req.MaxTxs})
			if ok || err != nil {
				return frame, ok, err
			}
		}
		status = protocol.StatusNotEnoughBlocks
	}
	body, err := chain.Encode(&protocol.ChunkResponse{Status: status})
	if err != nil {
		return nil, false, err
	}
	return append(binary.AppendUvarint(nil, uint64(len(body))), body...), false, nil
}

// decode decodes the chunk stored for k, as a client decodes a response.
func (cf *chunkFile) decode(k chunkKey) (*ledger.Chunk, error) {
	frame, ok, err := cf.frame(k)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("bench: no chunk at %d", k.start)
	}
	_, n := binary.Uvarint(frame)
	var resp protocol.ChunkResponse
	if err := chain.Decode(frame[n:], protocol.MaxChunkResponseSize, &resp); err != nil {
		return nil, err
	}
	if resp.Chunk == nil {
		return nil, fmt.Errorf("bench: no chunk at %d", k.start)
	}
	return resp.Chunk, nil
}
