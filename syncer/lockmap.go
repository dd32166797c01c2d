package syncer

import (
	"context"
	"fmt"
	"sync"

	"github.com/p2pnode/p2pnode/chain"
)

// lockMap is a mutex per block id, as the seed's MutexMap: two concurrent
// syncs that walk the same chain wait for each other block by block instead
// of fetching and executing the same block twice. Entries exist only while
// locked or waited for, so the map's size is bounded by the syncs running.
type lockMap struct {
	mu    sync.Mutex
	locks map[chain.Hash]*idLock
}

type idLock struct {
	held    chan struct{} // holds one token while locked
	waiters int
}

func newLockMap() *lockMap {
	return &lockMap{locks: make(map[chain.Hash]*idLock)}
}

// lock locks id, waiting while another holder has it, until ctx ends.
func (m *lockMap) lock(ctx context.Context, id chain.Hash) error {
	m.mu.Lock()
	l, ok := m.locks[id]
	if !ok {
		l = &idLock{held: make(chan struct{}, 1)}
		m.locks[id] = l
	}
	l.waiters++
	m.mu.Unlock()
	select {
	case l.held <- struct{}{}:
		return nil
	case <-ctx.Done():
		m.release(id, l, false)
		return ctx.Err()
	}
}

// unlock unlocks id, which the caller holds.
func (m *lockMap) unlock(id chain.Hash) {
	m.mu.Lock()
	l := m.locks[id]
	m.mu.Unlock()
	m.release(id, l, true)
}

func (m *lockMap) release(id chain.Hash, l *idLock, held bool) {
	if held {
		<-l.held
	}
	m.mu.Lock()
	l.waiters--
	if l.waiters == 0 {
		delete(m.locks, id)
	}
	m.mu.Unlock()
}

// lockSet holds several ids of one lockMap and releases them together. Walks
// lock ids in descending round order, so two walks never wait on each other
// in a cycle.
type lockSet struct {
	m    *lockMap
	held map[chain.Hash]bool
}

func (m *lockMap) newSet() *lockSet {
	return &lockSet{m: m, held: make(map[chain.Hash]bool)}
}

// lock adds id to the set. Locking an id the set already holds is an error:
// it would mean a cycle of signed blocks.
func (s *lockSet) lock(ctx context.Context, id chain.Hash) error {
	if s.held[id] {
		return fmt.Errorf("syncer: block %s reached twice while walking back", id.Short())
	}
	if err := s.m.lock(ctx, id); err != nil {
		return err
	}
	s.held[id] = true
	return nil
}

// releaseAll unlocks every id of the set.
func (s *lockSet) releaseAll() {
	for id := range s.held {
		s.m.unlock(id)
	}
	clear(s.held)
}
