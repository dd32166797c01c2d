package syncer

import (
	"testing"
	"time"
)

// TestFlowTimeoutFollowsBytesAndRate checks the sizing of a timeout: the
// base, plus twice the bytes in flight over the measured rate (the peer's
// or the local link's, whichever is slower), capped; and the AIMD window.
func TestFlowTimeoutFollowsBytesAndRate(t *testing.T) {
	cfg := DefaultConfig()
	f := newFlows(cfg)
	t0 := time.Unix(1000, 0)
	base := 2 * time.Second
	const mb = 1 << 20

	// Unmeasured: InitialPeerThroughput (1 MiB/s) is assumed.
	r := f.start("p", 4*mb, 0, base, t0)
	if want := base + 8*time.Second; r.timeout != want {
		t.Fatalf("unmeasured timeout %v, want %v", r.timeout, want)
	}
	// 4 MiB delivered in 16 s: 256 KiB/s. The window was full (2 allowed,
	// 1 in flight is not full), so it does not grow.
	f.done(r, flowDelivered, 4*mb, 64, t0.Add(16*time.Second))
	if got := f.peers["p"].rate; got != 256<<10 {
		t.Fatalf("rate %.0f, want %d", got, 256<<10)
	}
	t1 := t0.Add(20 * time.Second)
	r1 := f.start("p", 1*mb, 0, base, t1)
	r2 := f.start("p", 1*mb, 0, base, t1) // 2 MiB in flight at 256 KiB/s: 8 s, twice
	if want := base + 16*time.Second; r2.timeout != want {
		t.Fatalf("second request's timeout %v, want %v", r2.timeout, want)
	}
	// sharing counts what is about to be asked of all peers.
	r3 := f.start("q", 1*mb, 64*mb, base, t1)
	if r3.timeout != cfg.MaxResponseTimeout {
		t.Fatalf("timeout with 64 MiB about to share the link: %v, want the cap %v", r3.timeout, cfg.MaxResponseTimeout)
	}
	f.done(r3, flowCancelled, 0, 0, t1)

	// r1 answers while the window is full: it grows by one (slow start).
	f.done(r1, flowDelivered, 1*mb, 16, t1.Add(4*time.Second))
	if w := f.peers["p"].window; w != 3 {
		t.Fatalf("window %v after an answer to a full window, want 3", w)
	}
	// r2 then times out; p delivered r1 meanwhile: slow, not stalled.
	if slow := f.done(r2, flowTimedOut, 0, 0, t1.Add(18*time.Second)); !slow {
		t.Fatal("a timeout while the peer delivered another answer is not slow")
	}
	if w := f.peers["p"].window; w != 1.5 {
		t.Fatalf("window %v after a timeout, want 1.5", w)
	}
	// p answers at t3; r5 starts a second later and times out while
	// another peer delivered: p's answers queue on the local link.
	t3 := t1.Add(20 * time.Second)
	f.done(f.start("p", 1*mb, 0, base, t3.Add(-2*time.Second)), flowDelivered, 1*mb, 16, t3)
	r5 := f.start("p", 1*mb, 0, base, t3.Add(time.Second))
	r6 := f.start("q", 1*mb, 0, base, t3.Add(time.Second))
	f.done(r6, flowDelivered, 1*mb, 16, t3.Add(2*time.Second))
	if slow := f.done(r5, flowTimedOut, 0, 0, t3.Add(time.Second+r5.timeout)); !slow {
		t.Fatal("a timeout while the link delivered, of a peer that answered just before, is not slow")
	}
	f.peers["p"].timeouts = 1

	// A timeout with nothing delivered since the request began: a stall.
	t2 := t1.Add(60 * time.Second)
	r4 := f.start("p", 1*mb, 0, base, t2)
	if slow := f.done(r4, flowTimedOut, 0, 0, t2.Add(time.Minute)); slow {
		t.Fatal("a timeout with nothing delivered counts as slow")
	}
	if pf := f.peers["p"]; pf.window != 1 || pf.stalls != 1 || pf.timeouts != 1 || pf.inFlight != 0 || pf.bytesInFlight != 0 {
		t.Fatalf("peer flow %+v", *pf)
	}
	if f.all.inFlight != 0 || f.all.bytesInFlight != 0 {
		t.Fatalf("link flow %+v, want nothing in flight", f.all)
	}
}
