// Package peer is the HTTP protocol peers speak to each other under
// /v1/internal/: forwarding a Raft command to the leader (apply), renewing
// a node lease (lease), a member's blocking query for the state (mirror),
// running an action on a workload's holder (checkpoint, restart, migrate),
// asking a node to send a committed checkpoint (send), a linearizable read
// of a results log (results) and, in tests only, stepping the wall clock
// (clock).
//
// Every endpoint has one request type, one strict decoder (a size limit,
// no unknown fields, no trailing data, validated fields; its errors wrap
// api.ErrBadRequest and name the endpoint and the field) and, where it
// answers, one answer type. NewHandler is the server side over a Handler
// the node implements; Client is the calling side.
//
// Transport security: the endpoints share the Raft port over mutual TLS
// with peer certificates (ALPN); the transport names the verified caller
// (WithCaller, Caller), and every request without one is refused. The
// operator's token opens none of them. Transport builds the client side,
// NewClient takes it.
package peer
