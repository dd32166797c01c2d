//go:build unix && !linux

package testnet

import "syscall"

// sysProcAttr puts a node's process in a process group of its own, so that
// Ctrl-C in a terminal reaches the runner only (it stops the nodes itself,
// after reading their status).
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
