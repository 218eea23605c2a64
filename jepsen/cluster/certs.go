package cluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// initCA makes the cluster's CA and gossip key in dir with `lifeboat ca
// init`, unless dir already holds a CA (ca.crt and ca.key).
func initCA(bin, dir string) error {
	if exists(filepath.Join(dir, "ca.crt")) && exists(filepath.Join(dir, "ca.key")) {
		if !exists(filepath.Join(dir, "gossip.key")) { // a CA made before gossip keys
			return runBin(bin, "ca", "gossip-key", "--dir", dir)
		}
		return nil
	}
	return runBin(bin, "ca", "init", "--dir", dir, "--name", "jepsen")
}

// issueCert signs host name's peer certificate, naming its IP, into out
// with `lifeboat ca issue`: the files the agent reads with --tls-dir.
func issueCert(bin, caDir, name, ip, out string) error {
	return runBin(bin, "ca", "issue", name, "--ip", ip, "--ca", caDir, "--out", out)
}

// runBin runs the binary to completion; its output is in the error.
func runBin(bin string, args ...string) error {
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("cluster: %s %s: %w: %s", filepath.Base(bin), strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
