// Package emulate serves faithful stand-ins for the metadata services of
// AWS (IMDSv2), Google Compute Engine and Azure (IMDS), each of which can be
// told to issue a termination notice: a spot interruption, a rebalance
// recommendation, a maintenance event or a scale-in termination.
//
// The emulators answer the real SDKs (aws-sdk-go-v2/feature/ec2/imds,
// cloud.google.com/go/compute/metadata) and the documented Azure requests
// with the status codes, headers and bodies the real services give, so the
// watchers that read them are tested against the protocol rather than
// against a fake of their own making. Control endpoints under /lifeboat/ on
// the same listener (not part of any cloud's API) schedule notices, reset
// and report what was served.
package emulate

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"
)

// Cloud names, as node/cloud spells them.
const (
	AWS   = "aws"
	GCP   = "gcp"
	Azure = "azure"
)

// Lifecycles: whether the instance is spot (preemptible) capacity.
const (
	Spot     = "spot"
	OnDemand = "on-demand"
)

// Errors callers branch on.
var (
	// ErrBadConfig wraps every Config.Validate failure.
	ErrBadConfig = errors.New("emulate: bad config")
	// ErrBadNotice wraps every malformed notice (decoding or scheduling).
	ErrBadNotice = errors.New("emulate: bad notice")
	// ErrUnsupportedNotice is a notice this cloud, or this instance's
	// lifecycle, cannot give (a rebalance on GCP, a preemption of an
	// on-demand instance).
	ErrUnsupportedNotice = errors.New("emulate: notice not given by this instance")
	// ErrClosed is returned by methods called after Close.
	ErrClosed = errors.New("emulate: emulator closed")
)

// Config describes the emulated instance.
type Config struct {
	// Cloud is aws, gcp or azure.
	Cloud string
	// Region is the AWS region, GCP region or Azure location.
	Region string
	// Zone is the AWS availability zone or GCP zone (both inside Region),
	// or the Azure availability zone ("1", "2", "3"; "" for none).
	Zone string
	// InstanceType is the AWS instance type, GCP machine type or Azure VM size.
	InstanceType string
	// InstanceID is the AWS instance id (i-…), GCP numeric id or Azure vmId (a UUID).
	InstanceID string
	// Lifecycle is spot or on-demand; only spot instances are preempted.
	Lifecycle string
	// Name is the VM name (GCP instance/name, Azure compute name and the
	// Resources of its scheduled events). AWS has none in its IMDS.
	Name string
	// Now is the clock: notice times, token expiry and scheduling use it.
	Now func() time.Time
	// Logger receives one line per notice, acknowledgement and reset, and
	// one debug line per request.
	Logger *slog.Logger
}

// DefaultConfig is a spot instance in each cloud's best-known region, with
// fixed ids so that tests and demos see stable identities.
func DefaultConfig(cloud string) Config {
	c := Config{Cloud: cloud, Lifecycle: Spot, Name: "lifeboat-vm", Now: time.Now, Logger: slog.New(slog.DiscardHandler)}
	switch cloud {
	case AWS:
		c.Region, c.InstanceType, c.InstanceID = "us-east-1", "m5.large", "i-0e1fb0a7c0ffee123"
	case GCP:
		c.Region, c.InstanceType, c.InstanceID = "us-central1", "e2-standard-2", "4520031799277581759"
	case Azure:
		c.Region, c.InstanceType, c.InstanceID = "eastus", "Standard_D2s_v3", "02aab8a4-74ef-476e-8182-f6d2ba4166a6"
	}
	c.Zone = DefaultZone(cloud, c.Region)
	return c
}

// DefaultZone is the first zone of region: us-east-1a on AWS,
// us-central1-a on GCP, "1" on Azure.
func DefaultZone(cloud, region string) string {
	switch cloud {
	case AWS:
		return region + "a"
	case GCP:
		return region + "-a"
	case Azure:
		return "1"
	}
	return ""
}

var (
	awsRegionRe = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d+$`)
	awsIDRe     = regexp.MustCompile(`^i-[0-9a-f]{8}([0-9a-f]{9})?$`)
	gcpRegionRe = regexp.MustCompile(`^[a-z]+-[a-z]+\d+$`)
	gcpIDRe     = regexp.MustCompile(`^[1-9][0-9]{0,19}$`)
	uuidRe      = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	nameRe      = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9._-]{0,62})$`)
	plainRe     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
)

// Validate names the first setting that is missing or malformed.
func (c Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrBadConfig, fmt.Sprintf(format, a...))
	}
	switch {
	case c.Cloud != AWS && c.Cloud != GCP && c.Cloud != Azure:
		return bad("Cloud %q: want aws, gcp or azure", c.Cloud)
	case c.Lifecycle != Spot && c.Lifecycle != OnDemand:
		return bad("Lifecycle %q: want spot or on-demand", c.Lifecycle)
	case !plainRe.MatchString(c.InstanceType):
		return bad("InstanceType %q: want a type such as %s", c.InstanceType, DefaultConfig(c.Cloud).InstanceType)
	case !nameRe.MatchString(c.Name):
		return bad("Name %q: want 1-63 letters, digits, '.', '_' or '-'", c.Name)
	case c.Now == nil:
		return bad("Now is nil")
	case c.Logger == nil:
		return bad("Logger is nil")
	}
	return c.validatePlacement()
}

// validatePlacement checks Region, Zone and InstanceID in the cloud's own
// spelling, so that an emulated identity is one a watcher could really see.
func (c Config) validatePlacement() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrBadConfig, fmt.Sprintf(format, a...))
	}
	switch c.Cloud {
	case AWS:
		if !awsRegionRe.MatchString(c.Region) {
			return bad("Region %q: want an AWS region such as us-east-1", c.Region)
		}
		if len(c.Zone) != len(c.Region)+1 || !strings.HasPrefix(c.Zone, c.Region) || c.Zone[len(c.Region)] < 'a' || c.Zone[len(c.Region)] > 'z' {
			return bad("Zone %q: want a zone of region %s such as %s", c.Zone, c.Region, DefaultZone(AWS, c.Region))
		}
		if !awsIDRe.MatchString(c.InstanceID) {
			return bad("InstanceID %q: want i- and 8 or 17 hex digits", c.InstanceID)
		}
	case GCP:
		if !gcpRegionRe.MatchString(c.Region) {
			return bad("Region %q: want a GCP region such as us-central1", c.Region)
		}
		if len(c.Zone) != len(c.Region)+2 || !strings.HasPrefix(c.Zone, c.Region+"-") || c.Zone[len(c.Zone)-1] < 'a' || c.Zone[len(c.Zone)-1] > 'z' {
			return bad("Zone %q: want a zone of region %s such as %s", c.Zone, c.Region, DefaultZone(GCP, c.Region))
		}
		if !gcpIDRe.MatchString(c.InstanceID) {
			return bad("InstanceID %q: want a decimal number", c.InstanceID)
		}
	case Azure:
		if !plainRe.MatchString(c.Region) {
			return bad("Region %q: want an Azure location such as eastus", c.Region)
		}
		if c.Zone != "" && c.Zone != "1" && c.Zone != "2" && c.Zone != "3" {
			return bad("Zone %q: want 1, 2, 3 or empty", c.Zone)
		}
		if !uuidRe.MatchString(c.InstanceID) {
			return bad("InstanceID %q: want a lower-case UUID (the vmId)", c.InstanceID)
		}
	}
	return nil
}
