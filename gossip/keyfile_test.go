package gossip

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func fileMode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func TestKeyFileWriteReadAndRefuseOverwrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, KeyFile)
	k1, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != KeySize {
		t.Fatalf("NewKey made %d bytes, want %d", len(k1), KeySize)
	}
	if err := WriteKeyFile(path, k1, false); err != nil {
		t.Fatal(err)
	}
	if m := fileMode(t, path); m != 0o600 {
		t.Errorf("key file mode %v, want 0600", m)
	}
	got, err := ReadKeyFile(path)
	if err != nil || !bytes.Equal(got, k1) {
		t.Fatalf("ReadKeyFile = %x, %v; want the key written", got, err)
	}

	k2, _ := NewKey()
	if err := WriteKeyFile(path, k2, false); !errors.Is(err, ErrKeyExists) {
		t.Errorf("second WriteKeyFile = %v, want ErrKeyExists", err)
	}
	if got, _ := ReadKeyFile(path); !bytes.Equal(got, k1) {
		t.Error("a refused WriteKeyFile changed the file")
	}
	if err := WriteKeyFile(path, k2, true); err != nil {
		t.Fatalf("WriteKeyFile with replace: %v", err)
	}
	if got, _ := ReadKeyFile(path); !bytes.Equal(got, k2) {
		t.Error("WriteKeyFile with replace kept the old key")
	}
	if m := fileMode(t, path); m != 0o600 {
		t.Errorf("replaced key file mode %v, want 0600", m)
	}
	if err := WriteKeyFile(filepath.Join(dir, "short"), k1[:7], false); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("WriteKeyFile of 7 bytes = %v, want ErrInvalidKey", err)
	}
}

func TestReadKeyFileErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadKeyFile(filepath.Join(dir, "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
	for name, content := range map[string]string{
		"notbase64": "not base64!\n",
		"short":     "c2hvcnQ=\n",
		"huge":      strings.Repeat("A", 4096),
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadKeyFile(p); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s: ReadKeyFile = %v, want ErrInvalidKey", name, err)
		}
	}
}

func TestFingerprint(t *testing.T) {
	k1, k2 := newKey(t, 32), newKey(t, 16)
	f1 := Fingerprint(k1)
	if len(f1) != 16 || strings.Trim(f1, "0123456789abcdef") != "" {
		t.Errorf("Fingerprint = %q, want 16 hex digits", f1)
	}
	if Fingerprint(k1) != f1 || Fingerprint(k2) == f1 {
		t.Error("Fingerprint is not a function of the key alone")
	}
	if strings.Contains(EncodeKey(k1), f1) || strings.Contains(f1, EncodeKey(k1)[:8]) {
		t.Error("the fingerprint shows part of the key")
	}
}

func TestKeyringFileRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), KeyringFile)
	keys := [][]byte{newKey(t, 32), newKey(t, 16), newKey(t, 24)}
	if err := SaveKeyring(path, keys); err != nil {
		t.Fatal(err)
	}
	if m := fileMode(t, path); m != 0o600 {
		t.Errorf("keyring mode %v, want 0600", m)
	}
	got, err := LoadKeyring(path)
	if err != nil || !reflect.DeepEqual(got, keys) {
		t.Fatalf("LoadKeyring = %x, %v; want %x (primary first)", got, err, keys)
	}
	if err := SaveKeyring(path, keys[1:2]); err != nil {
		t.Fatal(err)
	}
	if got, _ := LoadKeyring(path); !reflect.DeepEqual(got, keys[1:2]) {
		t.Errorf("after a second save: %x", got)
	}
	if err := SaveKeyring(path, nil); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("SaveKeyring(nil) = %v, want ErrInvalidKey", err)
	}
	if _, err := LoadKeyring(path + ".none"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing keyring: %v, want fs.ErrNotExist", err)
	}
}

func TestDecodeKeyringRefuses(t *testing.T) {
	k := EncodeKey(newKey(t, 32))
	for name, in := range map[string]string{
		"empty":     ``,
		"empty arr": `[]`,
		"object":    `{"k":"` + k + `"}`,
		"trailing":  `["` + k + `"] []`,
		"short key": `["c2hvcnQ="]`,
		"twice":     `["` + k + `","` + k + `"]`,
		"too many":  `[` + strings.Repeat(`"`+k+`",`, MaxKeys) + `"` + k + `"]`,
		"not b64":   `["%%%"]`,
		"huge":      `["` + strings.Repeat("A", maxKeyringFile) + `"]`,
	} {
		if _, err := DecodeKeyring([]byte(in)); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s: DecodeKeyring = %v, want ErrInvalidKey", name, err)
		}
	}
}

func FuzzDecodeKeyring(f *testing.F) {
	k1, _ := NewKey()
	good, _ := EncodeKeyring([][]byte{k1, make([]byte, 16)})
	f.Add(good)
	f.Add([]byte(`[]`))
	f.Add([]byte(`["AAAAAAAAAAAAAAAAAAAAAA=="] x`))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := DecodeKeyring(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidKey) {
				t.Fatalf("error %v does not wrap ErrInvalidKey", err)
			}
			return
		}
		again, err := EncodeKeyring(keys)
		if err != nil {
			t.Fatalf("a decoded keyring does not encode: %v", err)
		}
		back, err := DecodeKeyring(again)
		if err != nil || !reflect.DeepEqual(back, keys) {
			t.Fatalf("round trip: %x, %v; want %x", back, err, keys)
		}
	})
}

func FuzzParseKey(f *testing.F) {
	f.Add("AAAAAAAAAAAAAAAAAAAAAA==")
	f.Add(" c2hvcnQ= \n")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKey(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidKey) {
				t.Fatalf("error %v does not wrap ErrInvalidKey", err)
			}
			return
		}
		if checkKey(k) != nil {
			t.Fatalf("ParseKey accepted %d bytes", len(k))
		}
	})
}
