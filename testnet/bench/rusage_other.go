//go:build !unix

package bench

import "time"

// resetPeakRSS cannot reset the peak here.
func resetPeakRSS() bool { return false }

// peakRSSMB is not measured here.
func peakRSSMB() float64 { return 0 }

// cpuTime is not measured here.
func cpuTime() time.Duration { return 0 }

// residentMB is not measured here.
func residentMB() (anon, file float64) { return 0, 0 }
