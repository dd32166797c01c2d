package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/p2pnode/p2pnode/chain/statetree"
)

// bucketTreeNodes holds the state tree's nodes: key NodeKey.AppendBinary,
// value Node.AppendBinary.
var bucketTreeNodes = []byte("tree_nodes")

// Node implements [statetree.NodeReader].
func (s *Store) Node(k statetree.NodeKey) (*statetree.Node, error) {
	var n *statetree.Node
	err := s.db.View(func(tx *bolt.Tx) error {
		var raw []byte
		if b := tx.Bucket(bucketTreeNodes); b != nil {
			raw = b.Get(k.AppendBinary(nil))
		}
		if raw == nil {
			return fmt.Errorf("%w: %d/%d", statetree.ErrNodeNotFound, k.Version, k.Depth)
		}
		var err error
		n, err = statetree.ParseNode(raw)
		return err
	})
	return n, err
}
