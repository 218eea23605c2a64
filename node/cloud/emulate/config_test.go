package emulate

import (
	"errors"
	"strings"
	"testing"
)

func TestDefaultConfigIsValid(t *testing.T) {
	want := map[string][3]string{
		AWS:   {"us-east-1", "us-east-1a", "m5.large"},
		GCP:   {"us-central1", "us-central1-a", "e2-standard-2"},
		Azure: {"eastus", "1", "Standard_D2s_v3"},
	}
	for cloud, w := range want {
		c := DefaultConfig(cloud)
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", cloud, err)
		}
		if got := [3]string{c.Region, c.Zone, c.InstanceType}; got != w {
			t.Errorf("%s defaults %v, want %v", cloud, got, w)
		}
	}
}

func TestValidateNamesTheSetting(t *testing.T) {
	cases := []struct {
		cloud string
		edit  func(*Config)
		field string
	}{
		{AWS, func(c *Config) { c.Cloud = "oracle" }, "Cloud"},
		{AWS, func(c *Config) { c.Lifecycle = "reserved" }, "Lifecycle"},
		{AWS, func(c *Config) { c.InstanceType = "" }, "InstanceType"},
		{AWS, func(c *Config) { c.Name = "has space" }, "Name"},
		{AWS, func(c *Config) { c.Now = nil }, "Now"},
		{AWS, func(c *Config) { c.Logger = nil }, "Logger"},
		{AWS, func(c *Config) { c.Region = "useast1" }, "Region"},
		{AWS, func(c *Config) { c.Zone = "eu-west-1a" }, "Zone"},
		{AWS, func(c *Config) { c.Zone = "us-east-1" }, "Zone"},
		{AWS, func(c *Config) { c.InstanceID = "i-xyz" }, "InstanceID"},
		{GCP, func(c *Config) { c.Region = "us-central-1" }, "Region"},
		{GCP, func(c *Config) { c.Zone = "us-central1a" }, "Zone"},
		{GCP, func(c *Config) { c.Zone = "europe-west1-b" }, "Zone"},
		{GCP, func(c *Config) { c.InstanceID = "i-0e1fb0a7c0ffee123" }, "InstanceID"},
		{Azure, func(c *Config) { c.Zone = "eastus-1" }, "Zone"},
		{Azure, func(c *Config) { c.InstanceID = "vm-1" }, "InstanceID"},
		{Azure, func(c *Config) { c.Region = "" }, "Region"},
	}
	for _, c := range cases {
		cfg := DefaultConfig(c.cloud)
		c.edit(&cfg)
		err := cfg.Validate()
		if !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s %s: %v, want ErrBadConfig naming %s", c.cloud, c.field, err, c.field)
		}
		if _, err := New(cfg); !errors.Is(err, ErrBadConfig) {
			t.Errorf("New took a config with a bad %s: %v", c.field, err)
		}
	}
	az := DefaultConfig(Azure)
	az.Zone = ""
	if err := az.Validate(); err != nil {
		t.Errorf("an Azure VM without a zone: %v", err)
	}
	gcp := DefaultConfig(GCP)
	gcp.Region, gcp.Zone = "europe-west4", DefaultZone(GCP, "europe-west4")
	if err := gcp.Validate(); err != nil || gcp.Zone != "europe-west4-a" {
		t.Errorf("another GCP region: %v (zone %s)", err, gcp.Zone)
	}
}

func TestEnvLine(t *testing.T) {
	cases := map[string]string{
		AWS:   "AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:8123/",
		GCP:   "GCE_METADATA_HOST=127.0.0.1:8123",
		Azure: "LIFEBOAT_AZURE_METADATA_ENDPOINT=http://127.0.0.1:8123",
	}
	for cloud, want := range cases {
		if got := EnvLine(cloud, "http://127.0.0.1:8123"); got != want {
			t.Errorf("%s: %q, want %q", cloud, got, want)
		}
	}
}
