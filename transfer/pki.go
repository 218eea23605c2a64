package transfer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// Roles a certificate names. Every agent holds a peer certificate; an
// operator's tools may hold a client one, which no peer link accepts.
const (
	RolePeer   = "peer"
	RoleClient = "client"
)

// ALPN is the protocol the transfer negotiates over TLS.
const ALPN = "lifeboat-transfer/1"

// Files of a CA directory and of a node's TLS directory (--tls-dir).
const (
	CACertFile   = "ca.crt"
	CAKeyFile    = "ca.key"
	NodeCertFile = "node.crt"
	NodeKeyFile  = "node.key"
)

// Validity of what NewCA and Issue make.
const (
	CAValidity   = 10 * 365 * 24 * time.Hour
	CertValidity = 2 * 365 * 24 * time.Hour
)

// uriScheme is the scheme of the URI SAN that carries a certificate's role
// and name: lifeboat://<role>/<name>.
const uriScheme = "lifeboat"

// ErrUntrusted wraps every refusal of a certificate: not signed by the
// cluster CA, expired, the wrong role or the wrong name, or none at all.
var ErrUntrusted = errors.New("transfer: untrusted certificate")

// CA is a cluster certificate authority: it signs every peer's certificate.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewCA makes a CA named name (the cluster's name, for operators) with a
// fresh ECDSA P-256 key, valid from now for CAValidity.
func NewCA(name string, now time.Time) (*CA, error) {
	if name == "" {
		return nil, errors.New("ca: empty name")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ca: key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name + " lifeboat CA", Organization: []string{"lifeboat"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("ca: certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca: certificate: %w", err)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// serial is a random 128-bit serial number.
func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}

// Save writes the CA into dir (created 0700 if missing): ca.crt 0644,
// ca.key 0600. It refuses to overwrite an existing CA.
func (ca *CA) Save(dir string) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(ca.Key)
	if err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	for _, f := range []string{CACertFile, CAKeyFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return fmt.Errorf("ca: %s already holds %s: not overwriting a CA", dir, f)
		}
	}
	if err := writeNew(filepath.Join(dir, CAKeyFile), pemBlock("PRIVATE KEY", keyDER), 0o600); err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	if err := writeNew(filepath.Join(dir, CACertFile), pemBlock("CERTIFICATE", ca.Cert.Raw), 0o644); err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	return nil
}

// LoadCA reads a CA that Save wrote.
func LoadCA(dir string) (*CA, error) {
	cert, err := readCert(filepath.Join(dir, CACertFile))
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("ca: %s is not a CA certificate", filepath.Join(dir, CACertFile))
	}
	key, err := readKey(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	if !samePublic(cert, key) {
		return nil, fmt.Errorf("ca: %s does not match %s", CAKeyFile, CACertFile)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// Identity is a node's (or a client's) certificate and key with the CA
// that signed it.
type Identity struct {
	Name, Role string
	Cert       tls.Certificate
	Leaf       *x509.Certificate
	CA         *x509.Certificate
	pool       *x509.CertPool
}

// SANs are the addresses a certificate names beside its node name: the
// IPs and DNS names clients reach the node's admin API at.
type SANs struct {
	IPs []net.IP
	DNS []string
}

// MaxSANs bounds the extra names of one certificate.
const MaxSANs = 64

// Issue signs a certificate for name in role (RolePeer or RoleClient),
// valid from now for CertValidity. Its SANs are the DNS name name and the
// URI lifeboat://<role>/<name>.
func (ca *CA) Issue(name, role string, now time.Time) (*Identity, error) {
	return ca.IssueSANs(name, role, SANs{}, now)
}

// IssueSANs is Issue with extra SANs: a node's certificate names the
// addresses clients reach its admin API at, so that HTTPS verifies.
func (ca *CA) IssueSANs(name, role string, san SANs, now time.Time) (*Identity, error) {
	if err := validateCertName(name); err != nil {
		return nil, fmt.Errorf("issue: %w", err)
	}
	if len(san.IPs)+len(san.DNS) > MaxSANs {
		return nil, fmt.Errorf("issue: %d extra names: at most %d", len(san.IPs)+len(san.DNS), MaxSANs)
	}
	dns := []string{name}
	for _, d := range san.DNS {
		if err := validateCertName(d); err != nil {
			return nil, fmt.Errorf("issue: --dns: %w", err)
		}
		if d != name {
			dns = append(dns, d)
		}
	}
	if role != RolePeer && role != RoleClient {
		return nil, fmt.Errorf("issue: role %q: want %s or %s", role, RolePeer, RoleClient)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("issue: key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: name, OrganizationalUnit: []string{role}, Organization: []string{"lifeboat"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(CertValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     dns,
		IPAddresses:  san.IPs,
		URIs:         []*url.URL{{Scheme: uriScheme, Host: role, Path: "/" + name}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, fmt.Errorf("issue: certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("issue: certificate: %w", err)
	}
	return newIdentity(name, role, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, ca.Cert), nil
}

// validateCertName checks that name can be a DNS SAN and a URI path: 1 to
// 253 bytes of letters, digits, '-', '_' and '.'.
func validateCertName(name string) error {
	if name == "" || len(name) > 253 {
		return fmt.Errorf("node name %q: want 1 to 253 bytes", name)
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
		if !ok {
			return fmt.Errorf("node name %q: %q is not a letter, digit, '-', '_' or '.'", name, r)
		}
	}
	return nil
}

func newIdentity(name, role string, cert tls.Certificate, ca *x509.Certificate) *Identity {
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &Identity{Name: name, Role: role, Cert: cert, Leaf: cert.Leaf, CA: ca, pool: pool}
}

// Save writes the identity into dir (created 0700 if missing), the layout
// --tls-dir expects: ca.crt, node.crt (0644) and node.key (0600). Existing
// files are replaced (re-issuing renews a certificate).
func (id *Identity) Save(dir string) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(id.Cert.PrivateKey)
	if err != nil {
		return fmt.Errorf("save identity: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save identity: %w", err)
	}
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{CACertFile, pemBlock("CERTIFICATE", id.CA.Raw), 0o644},
		{NodeKeyFile, pemBlock("PRIVATE KEY", keyDER), 0o600},
		{NodeCertFile, pemBlock("CERTIFICATE", id.Leaf.Raw), 0o644},
	}
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		tmp := p + ".tmp"
		if err := writeNew(tmp, f.data, f.mode); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("save identity: %w", err)
		}
		if err := os.Rename(tmp, p); err != nil {
			return fmt.Errorf("save identity: %w", err)
		}
	}
	return nil
}

// LoadIdentity reads what Identity.Save wrote and checks it: the key
// matches the certificate, the CA signed it, it is valid at now and it
// names a role and a name.
func LoadIdentity(dir string, now time.Time) (*Identity, error) {
	ca, err := readCert(filepath.Join(dir, CACertFile))
	if err != nil {
		return nil, fmt.Errorf("tls dir %s: %w", dir, err)
	}
	leaf, err := readCert(filepath.Join(dir, NodeCertFile))
	if err != nil {
		return nil, fmt.Errorf("tls dir %s: %w", dir, err)
	}
	key, err := readKey(filepath.Join(dir, NodeKeyFile))
	if err != nil {
		return nil, fmt.Errorf("tls dir %s: %w", dir, err)
	}
	if !samePublic(leaf, key) {
		return nil, fmt.Errorf("tls dir %s: %s does not match %s", dir, NodeKeyFile, NodeCertFile)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	name, role, err := verifyLeaf(leaf, nil, pool, now, "")
	if err != nil {
		return nil, fmt.Errorf("tls dir %s: %s: %w", dir, NodeCertFile, err)
	}
	return newIdentity(name, role, tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}, ca), nil
}

// ServerTLS is the server side of a peer link: it presents this identity
// and requires a client certificate of the same CA naming role peer.
func (id *Identity) ServerTLS(alpn ...string) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{id.Cert},
		ClientAuth:   tls.RequireAnyClientCert, // verified below, with the role check
		NextProtos:   alpn,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			_, _, err := id.verifyRaw(raw, "")
			return err
		},
	}
}

// APIServerTLS is the admin API's side: it presents this identity, and a
// client may present a certificate of the same CA, which the handshake
// verifies (a certificate of another CA fails it). What a verified role
// may do is the API's to decide (ClientRole).
func (id *Identity) APIServerTLS() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{id.Cert},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    id.pool,
	}
}

// ClientRole reports whether a verified TLS connection's client presented
// a certificate of role client, and its name.
func ClientRole(cs *tls.ConnectionState) (string, bool) {
	if cs == nil || len(cs.VerifiedChains) == 0 {
		return "", false
	}
	name, role, err := identityOf(cs.VerifiedChains[0][0])
	return name, err == nil && role == RoleClient
}

// ClientTLS is the client side of a peer link: it presents this identity
// and accepts only a server certificate of the same CA naming role peer
// and, if peerName is not empty, naming that node.
func (id *Identity) ClientTLS(alpn, peerName string) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{id.Cert},
		NextProtos:         alpnList(alpn),
		ServerName:         peerName,
		InsecureSkipVerify: true, // the chain, the role and the name are verified below
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			_, _, err := id.verifyRaw(raw, peerName)
			return err
		},
	}
}

func alpnList(alpn string) []string {
	if alpn == "" {
		return nil
	}
	return []string{alpn}
}

// verifyRaw verifies a peer's certificate chain as the TLS handshake
// presents it.
func (id *Identity) verifyRaw(raw [][]byte, wantName string) (string, string, error) {
	if len(raw) == 0 {
		return "", "", fmt.Errorf("%w: the peer presented no certificate", ErrUntrusted)
	}
	leaf, err := x509.ParseCertificate(raw[0])
	if err != nil {
		return "", "", fmt.Errorf("%w: %v", ErrUntrusted, err)
	}
	inter := x509.NewCertPool()
	for _, r := range raw[1:] {
		if c, err := x509.ParseCertificate(r); err == nil {
			inter.AddCert(c)
		}
	}
	name, role, err := verifyLeaf(leaf, inter, id.pool, time.Now(), wantName)
	if err != nil {
		return "", "", err
	}
	if role != RolePeer {
		return "", "", fmt.Errorf("%w: %s holds a %s certificate, a peer link needs role %s", ErrUntrusted, name, role, RolePeer)
	}
	return name, role, nil
}

// verifyLeaf checks leaf against the roots at now and returns the name and
// role its URI SAN carries; wantName, if set, must be that name.
func verifyLeaf(leaf *x509.Certificate, inter, roots *x509.CertPool, now time.Time, wantName string) (string, string, error) {
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return "", "", fmt.Errorf("%w: certificate of %q: %v", ErrUntrusted, leaf.Subject.CommonName, err)
	}
	name, role, err := identityOf(leaf)
	if err != nil {
		return "", "", err
	}
	if wantName != "" && name != wantName {
		return "", "", fmt.Errorf("%w: the certificate names %s, expected %s", ErrUntrusted, name, wantName)
	}
	return name, role, nil
}

// identityOf reads the lifeboat://<role>/<name> URI SAN.
func identityOf(c *x509.Certificate) (name, role string, err error) {
	for _, u := range c.URIs {
		if u.Scheme == uriScheme && len(u.Path) > 1 {
			return u.Path[1:], u.Host, nil
		}
	}
	return "", "", fmt.Errorf("%w: certificate of %q names no lifeboat role (no %s:// URI SAN)", ErrUntrusted, c.Subject.CommonName, uriScheme)
}

// PeerName returns the name and role of the verified peer of a TLS
// connection.
func PeerName(cs tls.ConnectionState) (name, role string, err error) {
	if len(cs.PeerCertificates) == 0 {
		return "", "", fmt.Errorf("%w: the peer presented no certificate", ErrUntrusted)
	}
	return identityOf(cs.PeerCertificates[0])
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// writeNew writes a file that must not exist yet, with mode, and fsyncs it.
func writeNew(p string, b []byte, mode os.FileMode) error {
	return writeSynced(p, b, os.O_EXCL, mode)
}

func readPEM(p, typ string) ([]byte, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s is missing (run `lifeboat ca init` and `lifeboat ca issue NAME`)", p)
		}
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != typ {
		return nil, fmt.Errorf("%s: no PEM %s block", p, typ)
	}
	return blk.Bytes, nil
}

func readCert(p string) (*x509.Certificate, error) {
	der, err := readPEM(p, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return c, nil
}

func readKey(p string) (crypto.Signer, error) {
	der, err := readPEM(p, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: not a signing key", p)
	}
	return s, nil
}

// samePublic reports whether key is the private half of cert's key.
func samePublic(cert *x509.Certificate, key crypto.Signer) bool {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(cert.PublicKey)
}
