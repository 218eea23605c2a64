package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"strings"
)

// The clouds a host may emulate: the names `lifeboat emulate` takes.
const (
	AWS   = "aws"
	GCP   = "gcp"
	Azure = "azure"
)

// regions is the region of every host of a cloud (`lifeboat emulate`'s
// default); zones are told apart within it.
var regions = map[string]string{AWS: "us-east-1", GCP: "us-central1", Azure: "eastus"}

// Config describes the cluster Start builds.
type Config struct {
	// Hosts is the number of hosts (agents), 1 to 26.
	Hosts int
	// Bin is the lifeboat binary (bin/lifeboat).
	Bin string
	// Dir is the root of the hosts' data dirs and logs (DIR/hN/agent.log,
	// DIR/hN/emulator.log)
	// and of the cluster's CA (DIR/ca) and certificates (DIR/tls/hN).
	Dir string
	// Prefix starts the labels of the namespaces (after netns.Prefix):
	// leftovers of a crashed run with the same prefix are deleted at
	// Start. Letters and digits, 1 to 6 of them.
	Prefix string
	// Subnet is the first three octets of the hosts' /24: hosts are .1 to
	// .Hosts, the switch's root end (where the metadata emulators listen)
	// is .254.
	Subnet string
	// Clouds are cycled over the hosts: host i emulates Clouds[i%len].
	// Azure has three zones, so at most three hosts may be Azure ones.
	Clouds []string
	// AgentArgs are extra flags for every agent ("--lease-ttl", "3s").
	AgentArgs []string
	// Env is added to every agent's environment.
	Env []string
	// Logger receives the harness's own lines (not the agents': those go
	// to their agent.log). Nil discards them.
	Logger *slog.Logger
}

// DefaultConfig is five hosts cycling through aws, gcp and azure on
// 10.240.0.0/24, labels prefixed "jp". Bin and Dir must still be set.
func DefaultConfig() Config {
	return Config{
		Hosts:  5,
		Prefix: "jp",
		Subnet: "10.240.0",
		Clouds: []string{AWS, GCP, Azure},
		Logger: slog.New(slog.DiscardHandler),
	}
}

// ErrBadConfig wraps every Validate failure.
var ErrBadConfig = errors.New("cluster: bad config")

var prefixRe = regexp.MustCompile(`^[a-z0-9]{1,6}$`)

// Validate names the first setting that is missing or wrong.
func (c Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrBadConfig, fmt.Sprintf(format, a...))
	}
	switch {
	case c.Hosts < 1 || c.Hosts > 26:
		return bad("Hosts %d: want 1 to 26", c.Hosts)
	case c.Bin == "":
		return bad("Bin is empty: want the path of bin/lifeboat (make build)")
	case c.Dir == "":
		return bad("Dir is empty: want a directory for data and logs")
	case !prefixRe.MatchString(c.Prefix):
		return bad("Prefix %q: want 1-6 lower-case letters or digits", c.Prefix)
	case net.ParseIP(c.Subnet+".254").To4() == nil || strings.Count(c.Subnet, ".") != 2:
		return bad("Subnet %q: want three octets such as 10.240.0", c.Subnet)
	case len(c.Clouds) == 0:
		return bad("Clouds is empty: want some of aws, gcp, azure")
	}
	azure := 0
	for i := range c.Hosts {
		switch cl := c.Clouds[i%len(c.Clouds)]; cl {
		case AWS, GCP:
		case Azure:
			azure++
		default:
			return bad("Clouds: %q: want aws, gcp or azure", cl)
		}
	}
	if azure > 3 {
		return bad("Clouds: %d Azure hosts, but Azure has three zones and every host needs its own", azure)
	}
	return nil
}

// hostIP is the address of host i (0-based).
func (c Config) hostIP(i int) string { return fmt.Sprintf("%s.%d", c.Subnet, i+1) }

// rootIP is the switch's root end.
func (c Config) rootIP() string { return c.Subnet + ".254" }

// emulatorSpec is one host's instance as its emulator serves it.
type emulatorSpec struct {
	Cloud, Region, Zone, InstanceID, Name string
}

// args are `lifeboat emulate`'s arguments for the instance (without
// --listen).
func (s emulatorSpec) args() []string {
	return []string{s.Cloud, "--region", s.Region, "--zone", s.Zone, "--instance-id", s.InstanceID, "--name", s.Name}
}

// emulatorSpec is host i's metadata: its cloud, a zone no other host has
// (zone letter i in the cloud's region; Azure's zones 1-3 in order), its
// own instance id and name.
func (c Config) emulatorSpec(i int, name string) emulatorSpec {
	cl := c.Clouds[i%len(c.Clouds)]
	s := emulatorSpec{Cloud: cl, Region: regions[cl], Name: name}
	letter := string(rune('a' + i))
	switch cl {
	case AWS:
		s.Zone = s.Region + letter
		s.InstanceID = fmt.Sprintf("i-0e1fb0a7c0ffee%03x", i+1)
	case GCP:
		s.Zone = s.Region + "-" + letter
		s.InstanceID = fmt.Sprintf("45200317992775%05d", i+1)
	case Azure:
		n := 0 // Azure hosts before this one
		for j := range i {
			if c.Clouds[j%len(c.Clouds)] == Azure {
				n++
			}
		}
		s.Zone = fmt.Sprint(n + 1)
		s.InstanceID = fmt.Sprintf("02aab8a4-74ef-476e-8182-f6d2ba4166%02x", i+1)
	}
	return s
}
