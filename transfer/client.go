package transfer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// ClientConfig configures a Client.
type ClientConfig struct {
	// Network is NetworkQUIC, NetworkTCP or NetworkPlain; it must be the
	// server's.
	Network string
	// TLS returns the client's TLS towards the receiver named peerName:
	// Identity.ClientTLS(ALPN, peerName). nil only with NetworkPlain.
	TLS func(peerName string) *tls.Config
	// Streams is how many data streams carry the chunks at once.
	Streams int
	// Conns is how many QUIC connections the streams spread over; more
	// than one spreads the work of QUIC over more cores. A transfer that
	// needs less than 4 MiB uses one: it would only wait for the other
	// handshakes. With TCP every stream is a connection of its own, and
	// Conns does not matter.
	Conns int
	// ListenPacket, for QUIC, makes the UDP socket of each connection
	// (tests make it inside a network namespace); Send closes what it
	// returns. nil: a new socket on any port.
	ListenPacket func() (net.PacketConn, error)
	// DialTCP, for TCP networks, dials addr (tests dial from inside a
	// network namespace). nil: a plain dial with TCP keep-alives.
	DialTCP func(ctx context.Context, addr string) (net.Conn, error)
	// Logger receives the client's logs.
	Logger *slog.Logger
	// Retries is how many more attempts Send makes after an interrupted
	// one (never after a refusal); each resumes where the last stopped.
	Retries int
	// RetryBackoff is the wait before the first retry; it doubles for
	// each further one, up to 16 times as long.
	RetryBackoff time.Duration
	// DialTimeout bounds connecting, TLS included.
	DialTimeout time.Duration
	// IdleTimeout bounds every silence of the network: a QUIC connection
	// with no packet, a stream that takes no data.
	IdleTimeout time.Duration
}

// DefaultClientConfig returns the defaults: QUIC, 4 streams on 1
// connection, 3 retries from half a second, 10-second dial and 30-second
// idle timeouts. Set TLS.
func DefaultClientConfig() ClientConfig {
	return ClientConfig{
		Network:      NetworkQUIC,
		Streams:      4,
		Conns:        1,
		Logger:       slog.New(slog.DiscardHandler),
		Retries:      3,
		RetryBackoff: 500 * time.Millisecond,
		DialTimeout:  10 * time.Second,
		IdleTimeout:  30 * time.Second,
	}
}

// DefaultTestClientConfig is DefaultClientConfig with timeouts for tests.
func DefaultTestClientConfig() ClientConfig {
	c := DefaultClientConfig()
	c.RetryBackoff = 20 * time.Millisecond
	c.DialTimeout = 5 * time.Second
	c.IdleTimeout = 5 * time.Second
	return c
}

// Validate reports the first setting that cannot work, by name.
func (c *ClientConfig) Validate() error {
	if err := validateNetwork(c.Network, c.TLS != nil); err != nil {
		return fmt.Errorf("transfer client: %w", err)
	}
	switch {
	case c.Streams < 1 || c.Streams > maxStreams:
		return fmt.Errorf("transfer client: Streams %d is outside 1-%d", c.Streams, maxStreams)
	case c.Conns < 1 || c.Conns > c.Streams:
		return fmt.Errorf("transfer client: Conns %d is outside 1-Streams (%d)", c.Conns, c.Streams)
	case c.Logger == nil:
		return errors.New("transfer client: Logger is nil")
	case c.Retries < 0:
		return fmt.Errorf("transfer client: Retries %d is negative", c.Retries)
	case c.RetryBackoff <= 0:
		return fmt.Errorf("transfer client: RetryBackoff %v is not positive", c.RetryBackoff)
	case c.DialTimeout <= 0:
		return fmt.Errorf("transfer client: DialTimeout %v is not positive", c.DialTimeout)
	case c.IdleTimeout < 100*time.Millisecond:
		return fmt.Errorf("transfer client: IdleTimeout %v is less than 100ms", c.IdleTimeout)
	}
	return nil
}

// maxStreams bounds ClientConfig.Streams, well within what a server lets
// one connection open.
const maxStreams = maxStreamsPerConn / 2

// Client sends sealed checkpoints to other nodes' Servers. It holds no
// connection between sends and is safe for concurrent use.
type Client struct {
	cfg ClientConfig
	log *slog.Logger

	hooks clientHooks // set by tests before the first Send
}

// clientHooks let tests see inside; nil hooks are not called.
type clientHooks struct {
	// attemptDone is called after each attempt, with its error, before
	// Send waits to retry.
	attemptDone func(attempt int, err error)
}

// NewClient validates cfg and returns a client.
func NewClient(cfg ClientConfig) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Client{cfg: cfg, log: cfg.Logger.With("component", "transfer-client")}, nil
}

// SendStats says what a Send did.
type SendStats struct {
	// Chunks and Bytes are the checkpoint's, all files together.
	Chunks int
	Bytes  int64
	// ChunksSent and BytesSent are what the last attempt shipped: the
	// chunks the receiver lacked when it began (chunk data only, without
	// framing).
	ChunksSent int
	BytesSent  int64
	// Resumed reports whether the receiver reused chunks that an earlier,
	// interrupted attempt had sent.
	Resumed bool
	// Took is the whole Send, retries included; DataTook is the last
	// attempt's shipping of chunks, from NEED until the receiver had read
	// them all (before it fsynced and sealed).
	Took, DataTook time.Duration
	// Attempts counts the attempts, the first included.
	Attempts int
}

// Send ships the sealed checkpoint ck to the Server at addr, whose
// certificate must name peerName (any peer of the CA if peerName is
// empty), and returns once the receiver has sealed it (or holds it
// already). The receiver asks only for the chunks it lacks; Send reads
// those from ck's files, without hashing them again (the receiver checks
// every chunk).
//
// An interrupted attempt (ErrInterrupted) is retried up to Retries times,
// each resuming where the last stopped; anything else ends Send at once.
// Errors wrap ErrRefused, ErrBadManifest, ErrDigestMismatch, ErrCorrupt
// (a chunk that does not match the manifest: the sender's files changed
// since sealing, or were damaged on the way), ErrExists, ErrProtocol,
// ErrUntrusted (either side refused the other's certificate),
// ErrReceiver or ErrInterrupted (with ctx's error when ctx ended it), and
// say what happened.
func (c *Client) Send(ctx context.Context, addr, peerName string, ck *Checkpoint) (SendStats, error) {
	o, err := offerOf(ck)
	if err != nil {
		return SendStats{}, fmt.Errorf("send %s to %s: %w", ck.name(), addr, err)
	}
	return c.send(ctx, addr, peerName, ck, o)
}

// offerOf is the OFFER of a sealed checkpoint.
func offerOf(ck *Checkpoint) (offer, error) {
	if ck == nil || ck.Manifest == nil {
		return offer{}, fmt.Errorf("%w: no checkpoint or no manifest", ErrBadManifest)
	}
	enc, err := ck.Manifest.Encode()
	if err != nil {
		return offer{}, err
	}
	d := digestOf(enc)
	if ck.Digest != "" && ck.Digest != d {
		return offer{}, fmt.Errorf("%w: the checkpoint says digest %s, its manifest hashes to %s", ErrDigestMismatch, ck.Digest, d)
	}
	if ck.Manifest.ChunkSize > MaxChunkData {
		return offer{}, fmt.Errorf("%w: chunk size %d, more than the %d a transfer carries", ErrBadManifest, ck.Manifest.ChunkSize, MaxChunkData)
	}
	return offer{workload: ck.Manifest.Workload, seq: ck.Manifest.Seq, digest: d, manifest: enc}, nil
}

// send makes the attempts of Send with the offer o.
func (c *Client) send(ctx context.Context, addr, peerName string, ck *Checkpoint, o offer) (SendStats, error) {
	start := time.Now()
	stats := SendStats{Bytes: ck.Manifest.Bytes()}
	for i := range ck.Manifest.Files {
		stats.Chunks += len(ck.Manifest.Files[i].Chunks)
	}
	log := c.log.With("checkpoint", ck.name(), "peer", peerName, "addr", addr)
	backoff := c.cfg.RetryBackoff
	for {
		stats.Attempts++
		err := c.attempt(ctx, addr, peerName, ck, o, &stats)
		if h := c.hooks.attemptDone; h != nil {
			h(stats.Attempts, err)
		}
		if err == nil {
			stats.Took = time.Since(start)
			log.Info("checkpoint sent", "attempts", stats.Attempts, "chunks_sent", stats.ChunksSent, "chunks", stats.Chunks,
				"resumed", stats.Resumed, "took", stats.Took.Round(time.Millisecond))
			return stats, nil
		}
		err = fmt.Errorf("send %s to %s (attempt %d): %w", ck.name(), addr, stats.Attempts, err)
		if !errors.Is(err, ErrInterrupted) || stats.Attempts > c.cfg.Retries || ctx.Err() != nil {
			stats.Took = time.Since(start)
			return stats, err
		}
		log.Warn("transfer interrupted; retrying", "err", err, "in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			stats.Took = time.Since(start)
			return stats, fmt.Errorf("%w (then: %w)", err, ctx.Err())
		case <-t.C:
		}
		backoff = min(2*backoff, 16*c.cfg.RetryBackoff)
	}
}
