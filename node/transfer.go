package node

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/lifeboat/lifeboat/transfer"
)

// startTransfer starts the checkpoint transfer: servers on the transfer
// port — QUIC on UDP, and the same protocol over mutual TLS on TCP — that
// receive into the node's store under the offers policy (an offer must
// match the checkpoint Raft prepared), and the client that ships this node's checkpoints over
// the network Config.TransferNetwork names. With the in-memory network the
// servers still run on real sockets, on a free port of the bind address.
func (n *Node) startTransfer() error {
	port := n.cfg.TransferPort
	if n.cfg.Net != nil {
		port = 0
	}
	log := n.log.With("part", "transfer")
	quic, err := n.transferServer(transfer.NetworkQUIC, port, log)
	if err != nil {
		return err
	}
	n.xfer = quic
	port = n.transferPort() // the same number on TCP
	if n.xferTCP, err = n.transferServer(transfer.NetworkTCP, port, log); err != nil {
		return err
	}
	cc := transfer.DefaultClientConfig()
	cc.Network = n.cfg.TransferNetwork
	cc.Conns = 2 // quic-go is CPU-bound: a second connection spreads it over more cores
	cc.TLS = func(peer string) *tls.Config { return n.cfg.TLS.ClientTLS(transfer.ALPN, peer) }
	cc.Logger = log
	cl, err := transfer.NewClient(cc)
	if err != nil {
		return err
	}
	n.commits.sender = cl
	// The page relay of lazy moves always runs over TLS on TCP, which
	// listens beside QUIC: quic-go is CPU-bound here, and a 64 MiB
	// counter's memory moved in 0.8-0.9 s over TCP against 1.1 s over
	// QUIC (one run each).
	cc.Network = transfer.NetworkTCP
	if n.pager, err = transfer.NewClient(cc); err != nil {
		return err
	}
	n.cluster.pager = n.pager
	return nil
}

// transferServer starts one transfer server on network.
func (n *Node) transferServer(network string, port int, log *slog.Logger) (*transfer.Server, error) {
	sc := transfer.DefaultServerConfig()
	sc.Network = network
	sc.Addr = net.JoinHostPort(n.cfg.BindAddr, strconv.Itoa(port))
	sc.TLS = n.cfg.TLS.ServerTLS(transfer.ALPN)
	sc.Store = n.store
	sc.Logger = log
	sc.Accept = func(peer string, m *transfer.Manifest, digest string) error {
		return n.offers.accept(n.runCtx, peer, m, digest)
	}
	sc.Pages = func(peer, workload string, seq uint64) (net.Conn, error) {
		return n.offers.pages(n.runCtx, peer, workload, seq)
	}
	sc.Received = n.offers.received
	srv, err := transfer.NewServer(sc)
	if err != nil {
		return nil, fmt.Errorf("transfer-port (%s): %w", network, err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("transfer-port (%s): %w", network, err)
	}
	return srv, nil
}

// transferPort is the port the transfer servers listen on.
func (n *Node) transferPort() int {
	if n.xfer != nil {
		if a, ok := n.xfer.Addr().(*net.UDPAddr); ok {
			return a.Port
		}
	}
	return n.cfg.TransferPort
}
