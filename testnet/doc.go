// Package testnet runs p2pnode networks: in-process networks for tests, the
// multi-process local testnet behind `p2pnode testnet`, perturbations (kill,
// restart, pause, partition, lag), and scenarios built from them.
package testnet
