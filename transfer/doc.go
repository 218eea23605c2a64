// Package transfer owns checkpoint images: the manifest that names every
// file and every chunk of a checkpoint by its SHA-256, and the local store
// that seals checkpoints atomically on disk, lists, verifies and prunes them,
// the transfer that ships them between peers over QUIC (or mutual TLS on
// TCP), and the cluster CA behind the peers' mutual TLS.
//
// A checkpoint is a directory tree written by a checkpointer (CRIU images or
// an application's own state files). Sealing it cuts every file into chunks
// of at most ChunkSize bytes, at page boundaries chosen by content (cdc.go),
// hashes each, writes the manifest beside the files and renames the
// whole directory into place, so a crash never leaves a half-written
// checkpoint that looks sealed. The manifest's digest (the hex SHA-256 of its
// canonical encoding) is what Raft commits; Verify checks a checkpoint on
// disk against it before any restore.
//
// Chunk-level hashes let a sender ship only the chunks a receiver lacks:
// Store.Chunks indexes every chunk a node already holds by its hash.
package transfer
