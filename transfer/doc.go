// Package transfer owns checkpoint images: the manifest that names every
// file and every chunk of a checkpoint by its SHA-256, and the local store
// that seals checkpoints atomically on disk, lists, verifies and prunes them.
//
// A checkpoint is a directory tree written by a checkpointer (CRIU images or
// an application's own state files). Sealing it hashes every file in chunks
// of ChunkSize bytes, writes the manifest beside the files and renames the
// whole directory into place, so a crash never leaves a half-written
// checkpoint that looks sealed. The manifest's digest (the hex SHA-256 of its
// canonical encoding) is what Raft commits; Verify checks a checkpoint on
// disk against it before any restore.
//
// Chunk-level hashes let a sender ship only the chunks a receiver lacks:
// Store.Chunks indexes every chunk a node already holds by its hash.
package transfer
