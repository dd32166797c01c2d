package node

import (
	"runtime"
	"runtime/debug"
)

// BuildInfo describes the binary a node runs.
type BuildInfo struct {
	// Version is the release version, or "devel".
	Version string `json:"version"`
	// Commit is the VCS revision the binary was built from (with "-dirty"
	// if the tree had changes), or "unknown".
	Commit string `json:"commit"`
	// GoVersion is the Go toolchain's version.
	GoVersion string `json:"go_version"`
}

// ReadBuildInfo returns the running binary's build information with the
// release version version ("" reads the main module's version, "devel" if
// it has none); the commit comes from the VCS stamp Go embeds when it builds
// in a checkout.
func ReadBuildInfo(version string) BuildInfo {
	b := BuildInfo{Version: version, Commit: "unknown", GoVersion: runtime.Version()}
	info, ok := debug.ReadBuildInfo()
	if ok && b.Version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		b.Version = info.Main.Version
	}
	if b.Version == "" {
		b.Version = "devel"
	}
	if !ok {
		return b
	}
	var rev string
	dirty := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev != "" {
		b.Commit = rev
		if dirty {
			b.Commit += "-dirty"
		}
	}
	return b
}
