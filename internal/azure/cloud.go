package azure

import (
	"fmt"
	"net"
	"strings"

	"github.com/pbicopy/pbicopy/internal/spec"
)

// Cloud is a Microsoft cloud: its Entra ID authority, Power BI endpoint and
// scope, Blob Storage and Key Vault domains.
type Cloud struct {
	Name          string
	AuthorityHost string
	PowerBI       string // REST endpoint
	PowerBIScope  string
	BlobSuffix    string // account.blob.<suffix>
	VaultSuffix   string // vault.<suffix>
}

// CloudNames are the names a job's cloud field takes, in the order the
// documentation gives them.
var CloudNames = spec.Set("cloud")

// Clouds are the clouds a job's cloud field names.
var Clouds = map[string]Cloud{
	"public": {"public", "https://login.microsoftonline.com/", "https://api.powerbi.com",
		"https://analysis.windows.net/powerbi/api/.default", "core.windows.net", "vault.azure.net"},
	"usgov": {"usgov", "https://login.microsoftonline.us/", "https://api.powerbigov.us",
		"https://analysis.usgovcloudapi.net/powerbi/api/.default", "core.usgovcloudapi.net", "vault.usgovcloudapi.net"},
	"china": {"china", "https://login.chinacloudapi.cn/", "https://api.powerbi.cn",
		"https://analysis.chinacloudapi.cn/powerbi/api/.default", "core.chinacloudapi.cn", "vault.azure.cn"},
}

// LookupCloud returns the named cloud; "" is the public cloud.
func LookupCloud(name string) (Cloud, error) {
	if name == "" {
		name = "public"
	}
	c, ok := Clouds[name]
	if !ok {
		return Cloud{}, fmt.Errorf("unknown cloud %q: use %s or %s", name, strings.Join(CloudNames[:len(CloudNames)-1], ", "), CloudNames[len(CloudNames)-1])
	}
	return c, nil
}

// PowerBIScope is the OAuth scope of the Power BI REST API in the public
// cloud.
const PowerBIScope = "https://analysis.windows.net/powerbi/api/.default"

// IsLoopback reports whether host (a name or an address, without a port)
// is this machine: tests and emulators run there.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
