// Package cloud knows where a peer runs: which cloud, and (in later parts)
// the termination notices that cloud's metadata service gives.
package cloud

import (
	"os"
	"path/filepath"
	"strings"
)

// Cloud names.
const (
	AWS   = "aws"
	GCP   = "gcp"
	Azure = "azure"
	None  = ""
)

// DMIDir is where Linux exposes the firmware's identification strings.
const DMIDir = "/sys/class/dmi/id"

// azureAssetTag is the chassis asset tag every Azure VM carries.
const azureAssetTag = "7783-7084-3265-9085-8269-3286-77"

// Detect decides the cloud as cloud-init does, without any network probe:
// first the SDKs' endpoint variables (an emulator named there wins), then
// the DMI strings in dmiDir. A laptop or a test machine is None, and so
// never sends a packet to the metadata address.
func Detect(dmiDir string, getenv func(string) string) string {
	switch {
	case getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT") != "":
		return AWS
	case getenv("GCE_METADATA_HOST") != "":
		return GCP
	case getenv("LIFEBOAT_AZURE_METADATA_ENDPOINT") != "":
		return Azure
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dmiDir, name))
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	vendor, product, bios := read("sys_vendor"), read("product_name"), read("bios_vendor")
	switch {
	case strings.Contains(vendor, "Amazon") || strings.Contains(bios, "Amazon") || strings.HasPrefix(read("product_uuid"), "EC2"):
		return AWS
	case strings.Contains(vendor, "Google") || strings.Contains(product, "Google Compute Engine"):
		return GCP
	case vendor == "Microsoft Corporation" && read("chassis_asset_tag") == azureAssetTag:
		return Azure
	}
	return None
}
