// Package jepsen is lifeboat's Jepsen-style partition test: real agents
// (bin/lifeboat) on hosts that are network namespaces on a bridge, each
// with its own cloud metadata emulator and zone; clients driving the
// counter workload and the admin API (traffic); faults injected at random
// (nemesis); every operation recorded with its invocation and completion
// (history) and the history checked (model, checker) and summarised
// (report).
//
// `go test ./jepsen/` (part of `make test`) runs the short suite: a few
// minutes, one mixed run with fencing on and the negative control with
// fencing off, which the checkers must catch. `make jepsen` runs the full
// suite: every nemesis on its own, then mixed, and the negative control;
// a summary table at the end, and for each failing run its history,
// verdicts and porcupine visualisation under jepsen-out/.
package jepsen
