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
// answers, one answer type. Register mounts the server side on an
// api.Server over a Handler the node implements; Client is the calling
// side.
//
// Transport security lives in one place: NewClient takes the
// *http.Client and the token every call between peers uses (today plain
// HTTP with the cluster's API token). Mutual TLS between peers (issue 16)
// swaps that client, and the scheme it dials, in NewClient and nowhere
// else.
package peer
