package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/ledger"
)

// SchemaVersion is the layout version this build writes and reads; a file
// of another version is refused with [ErrSchema]. Schema 4 added the state
// tree: the block infos of earlier files have no state root, so their
// chains cannot be read by this build at all, and there is nothing to
// migrate; such a node syncs again from an empty data directory.
const SchemaVersion uint64 = 4

// openTimeout bounds how long Open waits for the file lock held by another
// open of the same file.
const openTimeout = time.Second

// Size limits of stored values, checked before decoding.
const (
	maxQCSize        = 1 << 20
	maxSafetySize    = 1 << 20
	maxCommittedSize = 1 << 20
	maxHashSize      = chain.HashSize + 2
	maxMetaSize      = 1 << 10
)

var (
	// ErrSchema is returned by Open for a file written with another schema
	// version.
	ErrSchema = errors.New("store: unsupported schema")
	// ErrWrongChain is returned by Open for a file of another chain.
	ErrWrongChain = errors.New("store: wrong chain")
	// ErrLocked is returned by Open when the file is already open, in this
	// process or another.
	ErrLocked = errors.New("store: file is in use")
	// ErrClosed is returned by every method of a closed Store.
	ErrClosed = errors.New("store: closed")
	// ErrCorrupt is returned when stored data is missing, undecodable or
	// inconsistent; the wrapping error says what.
	ErrCorrupt = errors.New("store: corrupt")
	// ErrNotAvailable is returned by Txs and Nodes for data the ledger has
	// not committed.
	ErrNotAvailable = errors.New("store: not available")
	// ErrInvalid is returned for an argument the store refuses to write:
	// nothing is written.
	ErrInvalid = errors.New("store: invalid argument")
	// ErrVersionMismatch is the reason of a [*VersionError].
	ErrVersionMismatch = errors.New("store: batch does not start at the committed version")
)

// VersionError is returned by Commit for a batch whose StartVersion is not
// the committed version. errors.Is(err, ErrVersionMismatch) holds for it.
type VersionError struct {
	// Committed is the committed version of the store.
	Committed uint64
	// Start is the batch's StartVersion.
	Start uint64
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("store: batch starts at version %d, ledger is at version %d", e.Start, e.Committed)
}

// Unwrap returns [ErrVersionMismatch].
func (e *VersionError) Unwrap() error { return ErrVersionMismatch }

// Bucket names and fixed keys; see the package documentation.
var (
	bucketMeta        = []byte("meta")
	bucketBlocks      = []byte("blocks")
	bucketQCs         = []byte("qcs")
	bucketCommits     = []byte("commits")
	bucketSafety      = []byte("safety")
	bucketLedger      = []byte("ledger")
	bucketTxs         = []byte("txs")
	bucketNodes       = []byte("nodes")
	bucketState       = []byte("state")
	bucketArchive     = []byte("archive")
	bucketArchiveIDs  = []byte("archive_ids")
	bucketTxHashes    = []byte("tx_hashes")
	bucketStateValues = []byte("state_values")

	allBuckets = [][]byte{bucketMeta, bucketBlocks, bucketQCs, bucketCommits,
		bucketSafety, bucketLedger, bucketTxs, bucketNodes, bucketState,
		bucketArchive, bucketArchiveIDs, bucketTxHashes, bucketStateValues,
		bucketTreeNodes, bucketTreeStale}

	keySchema      = []byte("schema")
	keyChainID     = []byte("chain_id")
	keyGenesisHash = []byte("genesis_hash")
	keySafety      = []byte("safety")
	keyCommitted   = []byte("committed")
)

// Store is the durable state of a node: blocks and quorum certificates of
// the block tree, consensus safety data and the committed ledger, in one
// bbolt file. Every write method is one atomic, fsynced bbolt transaction.
// A Store is safe for concurrent use: readers never block on writers, and
// writers run one at a time.
type Store struct {
	db        *bolt.DB
	genesisID chain.Hash
	genesisQC chain.QuorumCert
	// releasedAt is the count of bytes the store's transactions had
	// allocated when its mapped pages were last released; read and written
	// only inside write transactions.
	releasedAt int64
	// reads counts the read transactions, and residentAt is the process's
	// resident file-backed bytes after the mapped pages were last
	// released (see maybeReleaseRead).
	reads      atomic.Uint64
	residentAt atomic.Int64

	// writeMu is held by a write transaction until its buffers are back
	// in scratch.
	writeMu sync.Mutex
	scratch scratch

	// idx holds the transactions committed since the last run of the
	// index by hash (see txindex.go).
	idx txTail

	// lastRun is the state tree's node run written last (see
	// statenodes.go), read without a transaction.
	lastRun atomic.Pointer[nodeRun]
}

var _ ledger.Storage = (*Store)(nil)

// Open opens the store file at path for the chain g, creating it if it does
// not exist. A new file gets, in one transaction, the schema version, the
// chain id, the genesis hash, the genesis block and the genesis QC. An
// existing file must have schema [SchemaVersion] ([ErrSchema] otherwise) and
// belong to g ([ErrWrongChain] otherwise). A file already open fails after
// about a second with [ErrLocked].
func Open(path string, g *chain.Genesis) (*Store, error) {
	if g == nil {
		return nil, fmt.Errorf("%w: nil genesis", ErrInvalid)
	}
	if err := g.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: openTimeout})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("%w: %s is locked by another open (this process or another) after %v", ErrLocked, path, openTimeout)
		}
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	s := &Store{db: db, genesisQC: g.QC()}
	s.genesisID = s.genesisQC.CertifiedBlock().ID
	fresh := false
	err = db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta) == nil {
			fresh = true
			return checkEmpty(tx)
		}
		return checkMeta(tx, g)
	})
	if err == nil && fresh {
		err = db.Update(func(tx *bolt.Tx) error { return initialize(tx, g) })
	}
	if err == nil {
		err = s.loadIndex()
	}
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	return s, nil
}

// checkEmpty refuses a file that has buckets but no meta bucket.
func checkEmpty(tx *bolt.Tx) error {
	return tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
		return fmt.Errorf("%w: bucket %q exists but the meta bucket does not", ErrCorrupt, name)
	})
}

// checkMeta checks that the file has schema SchemaVersion, belongs to g
// and has every bucket.
func checkMeta(tx *bolt.Tx, g *chain.Genesis) error {
	var schema uint64
	if err := getValue(tx, bucketMeta, keySchema, maxMetaSize, &schema); err != nil {
		return err
	}
	if schema != SchemaVersion {
		return fmt.Errorf("%w: schema version %d, this build reads %d: remove the data directory and sync again", ErrSchema, schema, SchemaVersion)
	}
	var id string
	var gh chain.Hash
	if err := getValue(tx, bucketMeta, keyChainID, maxMetaSize, &id); err != nil {
		return err
	}
	if err := getValue(tx, bucketMeta, keyGenesisHash, maxHashSize, &gh); err != nil {
		return err
	}
	if want := g.Hash(); id != g.ChainID || gh != want {
		return fmt.Errorf("%w: file holds chain %q with genesis %s, opened for chain %q with genesis %s",
			ErrWrongChain, id, gh, g.ChainID, want)
	}
	for _, name := range allBuckets {
		if tx.Bucket(name) == nil {
			return fmt.Errorf("%w: bucket %q is missing", ErrCorrupt, name)
		}
	}
	return nil
}

func initialize(tx *bolt.Tx, g *chain.Genesis) error {
	for _, name := range allBuckets {
		if _, err := tx.CreateBucket(name); err != nil {
			return fmt.Errorf("store: create bucket %q: %w", name, err)
		}
	}
	gh := g.Hash()
	if err := putValue(tx, bucketMeta, keySchema, SchemaVersion); err != nil {
		return err
	}
	if err := putValue(tx, bucketMeta, keyChainID, g.ChainID); err != nil {
		return err
	}
	if err := putValue(tx, bucketMeta, keyGenesisHash, gh); err != nil {
		return err
	}
	return saveTree(tx, []*chain.Block{g.Block()}, []chain.QuorumCert{g.QC()})
}

// Close closes the file. Methods called after Close return [ErrClosed].
func (s *Store) Close() error {
	s.idx.wg.Wait() // a run of the index being written
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// view and update run fn in a read-only or read-write bbolt transaction,
// translating a closed database into ErrClosed.
func (s *Store) view(fn func(*bolt.Tx) error) error {
	return closedErr(s.db.View(func(tx *bolt.Tx) error {
		err := fn(tx)
		s.maybeReleaseRead(tx)
		return err
	}))
}

func (s *Store) update(fn func(*bolt.Tx) error) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	defer s.scratch.release()
	return closedErr(s.db.Update(func(tx *bolt.Tx) error {
		s.maybeRelease(tx)
		return fn(tx)
	}))
}

// releaseEvery is how many bytes of pages the store writes between two
// releases of its mapped pages.
const releaseEvery = 64 << 20

// maybeRelease releases the pages of the store's memory map from the
// process's resident set once releaseEvery bytes were written since the
// last release. bbolt reads through a shared read-only map of the file, so
// every page a transaction reads stays resident in the process, and as the
// file grows, so would the process; released pages stay in the kernel's page
// cache and a later read maps them again. It runs inside a write
// transaction, which keeps bbolt from remapping the file meanwhile.
func (s *Store) maybeRelease(tx *bolt.Tx) {
	stats := s.db.Stats()
	alloc := stats.TxStats.GetPageAlloc()
	if alloc-s.releasedAt < releaseEvery {
		return
	}
	s.releasedAt = alloc
	releaseMapped(s.db.Info().Data, tx.Size())
	s.residentAt.Store(residentFileBytes())
}

// readReleaseEvery is by how many bytes the resident file-backed memory
// grows between two releases of the map by reads (a variable for tests).
var readReleaseEvery int64 = releaseEvery

// readCheckEvery is how many read transactions the store runs between two
// looks at the process's resident file-backed memory.
const readCheckEvery = 1024

// maybeReleaseRead releases the pages of the store's memory map once the
// process's resident file-backed memory grew by readReleaseEvery bytes
// since the last release. Reads alone grow it: a page fault on the map
// brings in up to 64 KiB of neighbouring cached pages, so a few thousand
// scattered lookups (a block executed on a restored snapshot's tree) map
// in most of a large file. The memory is the process's: in a process of
// several stores, the growth one store's reads caused may make another
// release its own map. It runs inside a transaction, which
// keeps bbolt from remapping the file meanwhile; every readCheckEvery-th
// read transaction looks, at the cost of one read of /proc/self/statm
// (a look every 64 reads slowed a settle of 5,000 blocks by 15%).
func (s *Store) maybeReleaseRead(tx *bolt.Tx) {
	if s.reads.Add(1)%readCheckEvery != 0 {
		return
	}
	now, at := residentFileBytes(), s.residentAt.Load()
	if now < 0 || now-at < readReleaseEvery || !s.residentAt.CompareAndSwap(at, now) {
		return
	}
	releaseMapped(s.db.Info().Data, tx.Size())
	s.residentAt.Store(residentFileBytes())
}

func closedErr(err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// putValue stores the canonical CBOR encoding of v under key in bucket name.
func putValue(tx *bolt.Tx, name, key []byte, v any) error {
	enc, err := chain.Encode(v)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err := tx.Bucket(name).Put(key, enc); err != nil {
		return fmt.Errorf("store: put %s key %s: %w", name, keyString(key), err)
	}
	return nil
}

// getValue decodes the value under key in bucket name into v; a missing or
// undecodable value is ErrCorrupt.
func getValue(tx *bolt.Tx, name, key []byte, maxSize int, v any) error {
	raw := tx.Bucket(name).Get(key)
	if raw == nil {
		return fmt.Errorf("%w: %s key %q is missing", ErrCorrupt, name, key)
	}
	return decodeValue(name, key, raw, maxSize, v)
}

// decodeValue decodes raw, the value under key in bucket name, into v; an
// undecodable value is ErrCorrupt.
func decodeValue(name, key, raw []byte, maxSize int, v any) error {
	if err := chain.Decode(raw, maxSize, v); err != nil {
		return fmt.Errorf("%w: %s key %s: %w", ErrCorrupt, name, keyString(key), err)
	}
	return nil
}

// versionKey is the key of a transaction: its version, 8 bytes big-endian.
func versionKey(v uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), v)
}

// keyString formats a key for error messages: quoted if it is a fixed name,
// hex otherwise.
func keyString(key []byte) string {
	for _, c := range key {
		if c < 'a' || c > 'z' {
			if c != '_' {
				return fmt.Sprintf("%x", key)
			}
		}
	}
	return fmt.Sprintf("%q", key)
}
