package syncer

import "errors"

// Errors a sync returns. A sync that fails leaves the local state consistent
// and can be retried.
var (
	// ErrRoundDeadlineReached: the sync's deadline passed before a peer
	// answered with a valid response (the seed's RoundDeadlineReached).
	ErrRoundDeadlineReached = errors.New("syncer: round deadline reached")
	// ErrAllPeersFailed: every candidate peer was asked once and none gave
	// a valid response (the seed's AllPeersFailed).
	ErrAllPeersFailed = errors.New("syncer: all peers failed")
	// ErrTooFarBehind: walking back to a known block would hold more than
	// Config.MaxPendingBytes; the node must fast-forward instead.
	ErrTooFarBehind = errors.New("syncer: too far behind to fetch block by block")
	// ErrMisbehaved marks a response that proves the peer broke the
	// protocol. Network implementations wrap it for frames that are
	// malformed or over the size limit.
	ErrMisbehaved = errors.New("syncer: peer misbehaved")
	// ErrUnavailable marks an honest refusal: the peer lacks the data or is
	// busy.
	ErrUnavailable = errors.New("syncer: peer cannot serve the request")
)
