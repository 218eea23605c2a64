package transfer

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/quic-go/quic-go"
)

// stream is one bidirectional byte stream of a transfer: a QUIC stream,
// or a whole TCP (TLS) connection where the network is TCP. The session
// code on both sides sees only this, so the same protocol runs over both.
//
// Read and Write may be called from one goroutine each; Close and Abort
// from any.
type stream interface {
	io.Reader
	io.Writer
	// CloseWrite ends what this side sends: the peer reads io.EOF after
	// the last byte written. Reading goes on.
	CloseWrite() error
	// Close releases the stream; what was written before is still
	// delivered.
	Close() error
	// Abort drops the stream in both directions at once: the peer's
	// reads and writes fail.
	Abort()
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
}

// streamAborted is the QUIC stream error code of Abort.
const streamAborted quic.StreamErrorCode = 1

// quicStream is a QUIC stream.
type quicStream struct{ *quic.Stream }

var _ stream = quicStream{}

func (s quicStream) CloseWrite() error { return s.Stream.Close() }

func (s quicStream) Close() error {
	s.Stream.CancelRead(0)
	s.Stream.Close() // after CloseWrite it reports an error that does not matter
	return nil
}

func (s quicStream) Abort() {
	s.Stream.CancelWrite(streamAborted)
	s.Stream.CancelRead(streamAborted)
}

// netStream is a TCP connection, with or without TLS, used as one stream.
type netStream struct{ net.Conn }

var _ stream = netStream{}

func (s netStream) CloseWrite() error {
	if cw, ok := s.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return s.Conn.Close()
}

func (s netStream) Abort() { s.Conn.Close() }

// quicConfig is the QUIC configuration of both sides: flow-control
// windows of several MiB, so that one stream can fill a fast link, and
// keep-alives well within the idle timeout.
func quicConfig(idle time.Duration) *quic.Config {
	return &quic.Config{
		HandshakeIdleTimeout:           min(idle, 10*time.Second),
		MaxIdleTimeout:                 idle,
		KeepAlivePeriod:                idle / 3,
		InitialStreamReceiveWindow:     4 << 20,
		MaxStreamReceiveWindow:         16 << 20,
		InitialConnectionReceiveWindow: 8 << 20,
		MaxConnectionReceiveWindow:     64 << 20,
		MaxIncomingStreams:             maxStreamsPerConn,
		MaxIncomingUniStreams:          -1,
	}
}

// maxStreamsPerConn bounds the streams a peer may have open on one QUIC
// connection.
const maxStreamsPerConn = 64

// tcpKeepAlive finds a dead TCP peer within about 20 seconds.
var tcpKeepAlive = net.KeepAliveConfig{Enable: true, Idle: 5 * time.Second, Interval: 5 * time.Second, Count: 3}

// withALPN returns a copy of c that offers ALPN when c names no protocol
// (QUIC requires one).
func withALPN(c *tls.Config) *tls.Config {
	c = c.Clone()
	if len(c.NextProtos) == 0 {
		c.NextProtos = []string{ALPN}
	}
	return c
}

// netError turns an error of the network (dialing, a handshake, reading
// or writing a stream) into one a caller can branch on: a TLS handshake
// that either side refused wraps ErrUntrusted; a QUIC connection the peer
// closed with one of the protocol's codes wraps that code's sentinel;
// anything else is a lost connection and wraps ErrInterrupted. Errors
// that wrap one of the package's sentinels already are returned as they
// are.
func netError(err error) error {
	if err == nil || isClassified(err) {
		return err
	}
	var te *quic.TransportError
	if errors.As(err, &te) && te.ErrorCode.IsCryptoError() {
		return fmt.Errorf("%w: TLS handshake failed: %v", ErrUntrusted, err)
	}
	var ae *quic.ApplicationError
	if errors.As(err, &ae) && ae.Remote && ae.ErrorCode != 0 {
		return &remoteError{msg: errorMsg{code: errorCode(ae.ErrorCode), message: ae.ErrorMessage}}
	}
	var ce *tls.CertificateVerificationError
	if errors.As(err, &ce) {
		return fmt.Errorf("%w: %v", ErrUntrusted, err)
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "remote error" { // a TLS alert from the peer
		return fmt.Errorf("%w: the peer refused the TLS handshake: %v", ErrUntrusted, err)
	}
	return fmt.Errorf("%w: %v", ErrInterrupted, err)
}

// isClassified reports whether err wraps a sentinel a caller branches on.
func isClassified(err error) bool {
	for _, s := range []error{ErrUntrusted, ErrReceiver} {
		if errors.Is(err, s) {
			return true
		}
	}
	for _, cs := range codeSentinels {
		if errors.Is(err, cs.err) {
			return true
		}
	}
	return false
}

// streamError is what a session makes of a failed read or write on a
// stream: a protocol violation stays one, anything else is a lost
// connection.
func streamError(what string, err error) error {
	if errors.Is(err, ErrProtocol) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%w: %s: %v", ErrInterrupted, what, err)
}
