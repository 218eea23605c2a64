package transfer

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Sentinels of a transfer between nodes, besides ErrBadManifest,
// ErrCorrupt, ErrExists and ErrProtocol. Client.Send's errors wrap one of
// them, and the message says what the receiver said.
var (
	// ErrRefused means the receiver's policy refused the checkpoint (it is
	// not the one Raft expects from this peer), or the receiver dropped
	// the transfer.
	ErrRefused = errors.New("transfer: refused")
	// ErrDigestMismatch means the offered digest is not the SHA-256 of
	// the offered manifest, or the receiver sealed another digest.
	ErrDigestMismatch = errors.New("transfer: manifest digest mismatch")
	// ErrInterrupted means the transfer broke off before the receiver
	// sealed the checkpoint: the connection was lost, timed out or was
	// closed, or the receiver was busy or shutting down. It is worth
	// retrying: the receiver keeps what it received for a while, and the
	// next attempt sends only the rest.
	ErrInterrupted = errors.New("transfer: interrupted")
	// ErrReceiver means the receiver failed for a reason of its own (a
	// disk error, a full disk); the message says which.
	ErrReceiver = errors.New("transfer: receiver failed")
)

// errorCode is an ERROR frame's code: which sentinel the client wraps.
type errorCode uint16

const (
	codeRefused        errorCode = 1
	codeBadManifest    errorCode = 2
	codeDigestMismatch errorCode = 3
	codeCorrupt        errorCode = 4
	codeExists         errorCode = 5
	codeProtocol       errorCode = 6
	codeInterrupted    errorCode = 7
	codeInternal       errorCode = 8
)

// codeSentinels maps codes to sentinels, in the order codeOf tries them.
var codeSentinels = []struct {
	code errorCode
	err  error
}{
	{codeInterrupted, ErrInterrupted},
	{codeRefused, ErrRefused},
	{codeDigestMismatch, ErrDigestMismatch},
	{codeBadManifest, ErrBadManifest},
	{codeExists, ErrExists},
	{codeCorrupt, ErrCorrupt},
	{codeProtocol, ErrProtocol},
}

// codeOf is the code that tells a client about err.
func codeOf(err error) errorCode {
	for _, cs := range codeSentinels {
		if errors.Is(err, cs.err) {
			return cs.code
		}
	}
	return codeInternal
}

// sentinelOf is the sentinel a client wraps for code; unknown codes (of a
// newer receiver) are ErrReceiver.
func sentinelOf(code errorCode) error {
	for _, cs := range codeSentinels {
		if cs.code == code {
			return cs.err
		}
	}
	return ErrReceiver
}

// newErrorMsg builds the ERROR frame for err, its message cut to the
// limit on a rune boundary.
func newErrorMsg(err error) errorMsg {
	msg := strings.ToValidUTF8(err.Error(), "?")
	if len(msg) > maxErrorMessage {
		cut := maxErrorMessage
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut]
	}
	return errorMsg{code: codeOf(err), message: msg}
}

// remoteError is what a client returns for an ERROR frame, or a QUIC
// connection the receiver closed with a code: it wraps the code's
// sentinel and reads "receiver NAME: MESSAGE" (the receiver's message
// names the sentinel).
type remoteError struct {
	peer string
	msg  errorMsg
}

func (e *remoteError) Error() string {
	if e.peer == "" {
		return "receiver: " + e.msg.message
	}
	return fmt.Sprintf("receiver %s: %s", e.peer, e.msg.message)
}

func (e *remoteError) Unwrap() error { return sentinelOf(e.msg.code) }
