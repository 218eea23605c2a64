// Package host finds out what this machine can do for lifeboat: which
// criu to use and whether it works, whether the kernel offers userfaultfd,
// soft-dirty tracking, PID and network namespaces, and nftables, and from
// that the checkpoint modes the node can serve. Probe is called once at
// agent start (its Modes go into gossip metadata) and by `lifeboat doctor`.
//
// Every external command goes through Config.Run and every direct kernel
// question through a Config function, so the decision logic is tested
// with fakes and the real probe is tested on the real host.
package host
