package source

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// PowerBIScope is the OAuth scope of the Power BI REST API.
const PowerBIScope = "https://analysis.windows.net/powerbi/api/.default"

// microsoftAuthorities are the Entra ID hosts of the public and sovereign
// clouds: instance discovery works against them. Any other authority (a
// private one, or a test fake) is used with instance discovery disabled so
// that it works offline.
var microsoftAuthorities = map[string]bool{
	"login.microsoftonline.com":        true,
	"login.microsoftonline.us":         true,
	"login.chinacloudapi.cn":           true,
	"login.partner.microsoftonline.cn": true,
}

// AuthConfig holds service-principal credentials for client-credentials
// sign-in.
type AuthConfig struct {
	Tenant       string
	ClientID     string
	ClientSecret string // never logged
	// AuthorityHost is the Entra ID host, e.g. https://login.microsoftonline.com/.
	// Empty means the AZURE_AUTHORITY_HOST environment variable, else the
	// public cloud.
	AuthorityHost string
}

// AuthorityHost resolves the authority host as azidentity does: the
// configured one, else AZURE_AUTHORITY_HOST, else the public cloud.
func (a AuthConfig) authorityHost() string {
	if a.AuthorityHost != "" {
		return a.AuthorityHost
	}
	if h := os.Getenv("AZURE_AUTHORITY_HOST"); h != "" {
		return h
	}
	return cloud.AzurePublic.ActiveDirectoryAuthorityHost
}

// NewCredential returns a client-secret credential for cfg. httpClient,
// when not nil, carries the token requests (tests and the demo use it to
// trust a local fake).
func NewCredential(cfg AuthConfig, httpClient *http.Client) (azcore.TokenCredential, error) {
	var missing []string
	if cfg.Tenant == "" {
		missing = append(missing, "tenant")
	}
	if cfg.ClientID == "" {
		missing = append(missing, "clientId")
	}
	if cfg.ClientSecret == "" {
		missing = append(missing, "clientSecret")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("auth: missing %s", strings.Join(missing, ", "))
	}
	host := cfg.authorityHost()
	u, err := url.Parse(host)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("auth: authority host %q is not a URL", host)
	}
	if u.Scheme != "https" {
		return nil, errors.New("auth: the authority host must use https")
	}
	if !strings.HasSuffix(host, "/") {
		host += "/"
	}
	opts := &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{
			Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: host},
		},
		DisableInstanceDiscovery: !microsoftAuthorities[strings.ToLower(u.Hostname())],
	}
	if httpClient != nil {
		opts.ClientOptions.Transport = httpClient
	}
	cred, err := azidentity.NewClientSecretCredential(cfg.Tenant, cfg.ClientID, cfg.ClientSecret, opts)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return cred, nil
}

var _ policy.Transporter = (*http.Client)(nil)
