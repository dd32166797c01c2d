// Package chain is the data model of a LibraBFT-style chain (chained HotStuff
// with the 3-chain commit rule) and its rules.
//
// It owns the types every other package handles — [Block], [BlockData],
// [BlockInfo], [VoteData], [LedgerInfo], [LedgerInfoWithSignatures],
// [QuorumCert], [Timeout], [TimeoutCert], [Vote], [ValidatorSet] and
// [Genesis] — their canonical CBOR encoding, their domain-separated hashes,
// and the functions that verify them against a validator set.
//
// The package is pure: no I/O, no clock reads and no package level mutable
// state; its only randomness is the weights of batch signature verification,
// which never change a verdict (see below). Everything that reaches it from a peer is decoded with
// [Decode] (size-limited, strict) and checked with the Verify functions before
// it is used; verification failures are [*VerifyError] values whose Reason is
// one of the Err sentinels below, so callers decide with errors.Is:
//
//	blk, err := chain.DecodeBlock(raw)
//	if err != nil {
//		return err // malformed bytes or a wrong id: the sender misbehaved
//	}
//	if err := verifier.VerifyBlock(blk); err != nil {
//		var ve *chain.VerifyError
//		if errors.As(err, &ve) && !ve.Soft {
//			// provable fault: penalise the sender
//		}
//		return err
//	}
//
// # Identity and hashing
//
// Validators are libp2p ed25519 identities: a [peer.ID] is both the signer of
// a quorum certificate and a peer that can be dialled. Signatures are plain
// ed25519 signatures over a 32-byte domain-separated hash, made with
// crypto/ed25519 and verified with the ZIP-215 rules
// (github.com/oasisprotocol/curve25519-voi, against each validator's key
// decompressed once when its [ValidatorSet] is built). The rules are the same
// for single and batch verification, so every node accepts exactly the same
// set of signatures whether it checks them one by one or in batches; batches
// draw random weights from crypto/rand, and a batch holding a bad signature
// passes only with negligible probability.
//
// Every hash is SHA-256 over a domain tag followed by the canonical (RFC 8949
// core deterministic) CBOR encoding of the value. The tags differ per kind of
// object, so a block signature can never verify as a vote and a vote never as
// a timeout. Hashes are always computed over the re-encoding of a decoded
// value, never over received bytes, so a non-canonical encoding of a value
// has the same hash as its canonical form.
//
// # The commit rule
//
// A quorum certificate on B2 commits B0 when B2 ← B1 ← B0 are a chain of
// blocks with consecutive rounds; the ledger info the validators sign when
// they vote for B2 then carries B0's [BlockInfo] as its commit info. See
// [CommitInfo].
package chain
