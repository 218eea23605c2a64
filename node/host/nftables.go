package host

import (
	"context"
	"strings"
)

// nftables fills Nftables: nft runs and, as root, lists tables.
func (p *prober) nftables(ctx context.Context, r *Report) Check {
	c := Check{Name: "nftables"}
	out, err := p.run(ctx, "nft", "--version")
	if err != nil {
		c.Detail = "nft does not run (" + firstLine(out, err) + "): apt-get install nftables"
		return c
	}
	ver := firstLine(out, nil)
	if !r.Root {
		c.Detail = ver + "; nft list tables needs root"
		return c
	}
	if out, err := p.run(ctx, "nft", "list", "tables"); err != nil {
		c.Detail = ver + "; nft list tables failed: " + firstLine(out, err)
		return c
	}
	r.Nftables, c.OK = true, true
	c.Detail = ver + "; nft list tables works"
	return c
}

// firstLine is the first non-empty line of out, else err's text.
func firstLine(out []byte, err error) string {
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	if err != nil {
		return err.Error()
	}
	return "no output"
}
