package cloud

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDetect(t *testing.T) {
	cases := []struct {
		name string
		dmi  map[string]string
		env  map[string]string
		want string
	}{
		{"laptop", map[string]string{"sys_vendor": "LENOVO", "product_name": "20XW"}, nil, None},
		{"no dmi at all", nil, nil, None},
		{"ec2 nitro", map[string]string{"sys_vendor": "Amazon EC2", "product_name": "m5.large"}, nil, AWS},
		{"ec2 xen", map[string]string{"sys_vendor": "Xen", "bios_vendor": "Amazon EC2"}, nil, AWS},
		{"gce", map[string]string{"sys_vendor": "Google", "product_name": "Google Compute Engine"}, nil, GCP},
		{"azure", map[string]string{"sys_vendor": "Microsoft Corporation", "chassis_asset_tag": azureAssetTag}, nil, Azure},
		{"hyper-v is not azure", map[string]string{"sys_vendor": "Microsoft Corporation", "chassis_asset_tag": "None"}, nil, None},
		{"aws emulator variable wins", map[string]string{"sys_vendor": "Google"}, map[string]string{"AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:1338"}, AWS},
		{"gce emulator variable", nil, map[string]string{"GCE_METADATA_HOST": "127.0.0.1:8080"}, GCP},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for k, v := range c.dmi {
				if err := os.WriteFile(filepath.Join(dir, k), []byte(v+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got := Detect(dir, func(k string) string { return c.env[k] })
			if got != c.want {
				t.Fatalf("Detect = %q, want %q", got, c.want)
			}
		})
	}
}
