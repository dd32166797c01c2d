package testnet

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/p2pnode/p2pnode/node"
)

// PollInterval is how often the checks poll the nodes' HTTP APIs.
const PollInterval = 100 * time.Millisecond

var (
	// ErrNotConverged: the nodes did not reach a common committed round in
	// time.
	ErrNotConverged = errors.New("testnet: nodes did not converge")
	// ErrDiverged: two nodes committed different blocks at one round.
	ErrDiverged = errors.New("testnet: committed prefixes differ")
)

// Converge waits until the nodes of apis (name → API base URL) converge:
// every node has committed at least the highest round any of them had
// committed when Converge started, and every node's committed round has
// advanced since then — they agree on how far the chain goes and the
// chain still grows. A node that does not answer counts as behind. ctx
// bounds the wait; on expiry the error wraps ErrNotConverged and names the
// nodes behind.
func Converge(ctx context.Context, apis map[string]string) error {
	names := slices.Sorted(maps.Keys(apis))
	first := make(map[string]uint64, len(names))
	var target uint64
	for _, name := range names {
		if s, err := FetchStatus(ctx, apis[name]); err == nil {
			first[name] = s.CommittedRound
			target = max(target, s.CommittedRound)
		}
	}
	t := time.NewTicker(PollInterval)
	defer t.Stop()
	behind := map[string]string{}
	for {
		clear(behind)
		for _, name := range names {
			s, err := FetchStatus(ctx, apis[name])
			switch f, seen := first[name]; {
			case err != nil:
				behind[name] = err.Error()
			case !seen:
				first[name] = s.CommittedRound // answers from now on
				behind[name] = "first answer"
			case s.CommittedRound < target || s.CommittedRound <= f:
				behind[name] = fmt.Sprintf("committed round %d, want > %d and ≥ %d", s.CommittedRound, f, target)
			}
		}
		if len(behind) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %v: behind: %v", ErrNotConverged, ctx.Err(), behind)
		case <-t.C:
		}
	}
}

// PrefixReport says which committed rounds ComparePrefixes compared.
type PrefixReport struct {
	// From and To bound the rounds compared (To is the lowest committed
	// round among the nodes).
	From, To uint64
	// Rounds is how many committed rounds at least two nodes listed.
	Rounds int
}

// ComparePrefixes reads the committed blocks of every node of apis over
// the last window rounds that all of them committed (window 0: from round
// 0) and checks that no two nodes committed different blocks at one
// round; a node that state-synced lacks the blocks below its sync point,
// which is not a difference. A difference wraps ErrDiverged.
func ComparePrefixes(ctx context.Context, apis map[string]string, window uint64) (PrefixReport, error) {
	names := slices.Sorted(maps.Keys(apis))
	var rep PrefixReport
	for i, name := range names {
		s, err := FetchStatus(ctx, apis[name])
		if err != nil {
			return rep, err
		}
		if i == 0 || s.CommittedRound < rep.To {
			rep.To = s.CommittedRound
		}
	}
	if window > 0 && rep.To >= window {
		rep.From = rep.To - window + 1
	}
	type seen struct {
		id, node string
		count    int
	}
	byRound := map[uint64]*seen{}
	for _, name := range names {
		for from := rep.From; from <= rep.To; {
			bs, err := FetchBlocks(ctx, apis[name], from, node.MaxBlocksPerPage)
			if err != nil {
				return rep, err
			}
			if len(bs) == 0 {
				break
			}
			for _, b := range bs {
				if b.Round > rep.To {
					break
				}
				switch s := byRound[b.Round]; {
				case s == nil:
					byRound[b.Round] = &seen{id: b.ID, node: name, count: 1}
				case s.id != b.ID:
					return rep, fmt.Errorf("%w: round %d: %s committed %s, %s committed %s",
						ErrDiverged, b.Round, s.node, s.id, name, b.ID)
				default:
					s.count++
				}
			}
			from = bs[len(bs)-1].Round + 1
		}
	}
	for _, s := range byRound {
		if s.count > 1 {
			rep.Rounds++
		}
	}
	return rep, nil
}

// WaitFor polls cond every PollInterval until it returns nil or ctx ends;
// then it returns cond's last error (or ctx's, if cond never ran).
func WaitFor(ctx context.Context, cond func(context.Context) error) error {
	t := time.NewTicker(PollInterval)
	defer t.Stop()
	for {
		err := cond(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (%w)", err, ctx.Err())
		case <-t.C:
		}
	}
}
