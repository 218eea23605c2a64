package gossip

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Files that hold gossip keys. A key file is one key in standard base64
// and a newline: `lifeboat ca init` writes one beside the CA and `ca
// issue` copies it into a peer's --tls-dir. A keyring file is what a
// running agent keeps in its data dir, so that a key installed or removed
// through the API survives a restart (as serf's keyring file does).
const (
	KeyFile     = "gossip.key"
	KeyringFile = "gossip.keyring"
)

// KeySize is the size of the keys NewKey makes: AES-256.
const KeySize = 32

// Bounds of what the file readers accept.
const (
	maxKeyFile     = 256
	maxKeyringFile = 16 << 10
	// MaxKeys bounds a keyring: a rotation needs two keys; a few more
	// leave room for a slow one.
	MaxKeys = 16
)

// ErrKeyExists is returned by WriteKeyFile when the file is there already.
var ErrKeyExists = errors.New("gossip: key file exists")

// NewKey returns a fresh random key of KeySize bytes.
func NewKey() ([]byte, error) {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("gossip: new key: %w", err)
	}
	return k, nil
}

// Fingerprint names a key without giving it away: 16 hex digits of a
// SHA-256 of the key (under a label of its own, so the digest matches no
// other use of the key). Operators and the API name keys by it; the key
// itself is never shown.
func Fingerprint(key []byte) string {
	h := sha256.New()
	h.Write([]byte("lifeboat gossip key\x00"))
	h.Write(key)
	return hex.EncodeToString(h.Sum(nil)[:FingerprintLen/2])
}

// FingerprintLen is the length of a Fingerprint.
const FingerprintLen = 16

// CheckFingerprint reports whether s looks like a Fingerprint (16 lower-case
// hex digits); the error names the problem and wraps ErrInvalidKey.
func CheckFingerprint(s string) error {
	if len(s) != FingerprintLen {
		return fmt.Errorf("%w: fingerprint %.40q: want %d hex digits", ErrInvalidKey, s, FingerprintLen)
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return fmt.Errorf("%w: fingerprint %q: want %d lower-case hex digits", ErrInvalidKey, s, FingerprintLen)
		}
	}
	return nil
}

// EncodeKey is a key as a key file holds it: standard base64.
func EncodeKey(key []byte) string { return base64.StdEncoding.EncodeToString(key) }

// WriteKeyFile writes key to path with mode 0600, fsynced. Unless replace
// is set it refuses to overwrite a file that exists (ErrKeyExists); with
// replace the new file takes the old one's place atomically.
func WriteKeyFile(path string, key []byte, replace bool) error {
	if err := checkKey(key); err != nil {
		return err
	}
	data := []byte(EncodeKey(key) + "\n")
	if !replace {
		err := writeSynced(path, data, os.O_EXCL)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %s: not overwriting a gossip key", ErrKeyExists, path)
		}
		return err
	}
	return replaceFile(path, data)
}

// ReadKeyFile reads a key file (one base64 key; surrounding space is
// ignored). A missing file is reported with an error that wraps
// fs.ErrNotExist.
func ReadKeyFile(path string) ([]byte, error) {
	b, err := readBounded(path, maxKeyFile)
	if err != nil {
		return nil, err
	}
	k, err := ParseKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// EncodeKeyring is a keyring file's content: a JSON array of base64 keys,
// the primary first (the layout of serf's keyring file).
func EncodeKeyring(keys [][]byte) ([]byte, error) {
	if len(keys) == 0 || len(keys) > MaxKeys {
		return nil, fmt.Errorf("%w: a keyring holds 1 to %d keys, not %d", ErrInvalidKey, MaxKeys, len(keys))
	}
	out := make([]string, len(keys))
	for i, k := range keys {
		if err := checkKey(k); err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		out[i] = EncodeKey(k)
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// DecodeKeyring reads what EncodeKeyring wrote, strictly: one JSON array of
// 1 to MaxKeys distinct valid keys and nothing after it. Errors wrap
// ErrInvalidKey.
func DecodeKeyring(b []byte) ([][]byte, error) {
	if len(b) > maxKeyringFile {
		return nil, fmt.Errorf("%w: keyring is over %d bytes", ErrInvalidKey, maxKeyringFile)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	var raw []string
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: keyring is not a JSON array of base64 keys: %v", ErrInvalidKey, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: keyring has data after the JSON array", ErrInvalidKey)
	}
	if len(raw) == 0 || len(raw) > MaxKeys {
		return nil, fmt.Errorf("%w: a keyring holds 1 to %d keys, not %d", ErrInvalidKey, MaxKeys, len(raw))
	}
	keys := make([][]byte, 0, len(raw))
	seen := map[string]bool{}
	for i, s := range raw {
		k, err := ParseKey(s)
		if err != nil {
			return nil, fmt.Errorf("keyring key %d: %w", i+1, err)
		}
		if seen[string(k)] {
			return nil, fmt.Errorf("%w: keyring key %d is there twice", ErrInvalidKey, i+1)
		}
		seen[string(k)] = true
		keys = append(keys, k)
	}
	return keys, nil
}

// SaveKeyring writes keys (the primary first) to path, mode 0600,
// replacing what was there atomically.
func SaveKeyring(path string, keys [][]byte) error {
	b, err := EncodeKeyring(keys)
	if err != nil {
		return err
	}
	return replaceFile(path, b)
}

// LoadKeyring reads a keyring file; a missing file is an error that wraps
// fs.ErrNotExist.
func LoadKeyring(path string) ([][]byte, error) {
	b, err := readBounded(path, maxKeyringFile)
	if err != nil {
		return nil, err
	}
	keys, err := DecodeKeyring(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return keys, nil
}

// readBounded reads at most limit bytes of path; a longer file is an error.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("gossip: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("gossip: %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: %s is over %d bytes", ErrInvalidKey, path, limit)
	}
	return b, nil
}

// replaceFile writes data beside path and renames it into place, so a
// crash leaves the old file or the new one, never half of either.
func replaceFile(path string, data []byte) error {
	tmp := path + ".tmp"
	_ = os.Remove(tmp) // a crash's leftover
	if err := writeSynced(tmp, data, os.O_EXCL); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("gossip: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync() // the rename survives a crash
		d.Close()
	}
	return nil
}

// writeSynced creates path with mode 0600 (flag adds O_EXCL) and fsyncs it.
func writeSynced(path string, data []byte, flag int) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|flag, 0o600)
	if err != nil {
		return fmt.Errorf("gossip: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("gossip: %s: %w", path, err)
	}
	return nil
}

// CheckKey reports whether k has an AES key length (16, 24 or 32 bytes);
// errors wrap ErrInvalidKey.
func CheckKey(k []byte) error { return checkKey(k) }
