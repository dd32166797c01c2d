//go:build unix

package testnet

import "syscall"

// The signals behind Runner.Kill, Pause, Resume and Shutdown.
const (
	sigKill = syscall.SIGKILL
	sigStop = syscall.SIGSTOP
	sigCont = syscall.SIGCONT
	sigTerm = syscall.SIGTERM
)
