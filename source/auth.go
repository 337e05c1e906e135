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
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
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
		return Cloud{}, fmt.Errorf("unknown cloud %q: use public, usgov or china", name)
	}
	return c, nil
}

// PowerBIScope is the OAuth scope of the Power BI REST API in the public
// cloud.
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

// Authentication methods.
const (
	MethodClientSecret      = "clientSecret"
	MethodClientCertificate = "clientCertificate"
	MethodWorkloadIdentity  = "workloadIdentity"
	MethodManagedIdentity   = "managedIdentity"
	MethodAzureCLI          = "azureCLI"
	MethodDefault           = "default"
)

// Methods lists the authentication methods in the order the documentation
// gives them.
var Methods = []string{MethodClientSecret, MethodClientCertificate, MethodWorkloadIdentity, MethodManagedIdentity, MethodAzureCLI, MethodDefault}

// AuthConfig says how to get Entra ID tokens. Secrets in it are never logged.
type AuthConfig struct {
	// Method is one of Methods; "" means clientSecret when a secret is
	// given, else clientCertificate when a certificate is, else default.
	Method   string
	Tenant   string
	ClientID string
	// ClientSecret is the resolved secret (clientSecret method).
	ClientSecret string
	// Certificate is the PEM or PKCS#12 (PFX) data holding the certificate
	// and its private key (clientCertificate method); CertificatePassword
	// decrypts it.
	Certificate         []byte
	CertificatePassword string
	// TokenFile is the federated token file (workloadIdentity method);
	// "" means AZURE_FEDERATED_TOKEN_FILE.
	TokenFile string
	// AuthorityHost is the Entra ID host, e.g. https://login.microsoftonline.com/.
	// Empty means the AZURE_AUTHORITY_HOST environment variable, else the
	// cloud's.
	AuthorityHost string
	// Cloud is the cloud's name ("" public).
	Cloud string
}

// EffectiveMethod is the method cfg resolves to.
func (a AuthConfig) EffectiveMethod() string {
	switch {
	case a.Method != "":
		return a.Method
	case a.ClientSecret != "":
		return MethodClientSecret
	case len(a.Certificate) > 0:
		return MethodClientCertificate
	}
	return MethodDefault
}

// authorityHost resolves the authority host as azidentity does: the
// configured one, else AZURE_AUTHORITY_HOST, else the cloud's.
func (a AuthConfig) authorityHost() (string, error) {
	if a.AuthorityHost != "" {
		return a.AuthorityHost, nil
	}
	if h := os.Getenv("AZURE_AUTHORITY_HOST"); h != "" {
		return h, nil
	}
	c, err := LookupCloud(a.Cloud)
	if err != nil {
		return "", err
	}
	return c.AuthorityHost, nil
}

// NewCredential returns the credential cfg describes. httpClient, when not
// nil, carries the token requests (tests and the demo use it to trust a
// local fake).
func NewCredential(cfg AuthConfig, httpClient *http.Client) (azcore.TokenCredential, error) {
	host, err := cfg.authorityHost()
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
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
	co := azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: host}}
	if httpClient != nil {
		co.Transport = httpClient
	}
	noDiscovery := !microsoftAuthorities[strings.ToLower(u.Hostname())]

	method := cfg.EffectiveMethod()
	var missing []string
	need := func(name, value string) {
		if value == "" {
			missing = append(missing, name)
		}
	}
	switch method {
	case MethodClientSecret:
		need("tenant", cfg.Tenant)
		need("clientId", cfg.ClientID)
		need("clientSecret (or clientSecretFile, clientSecretFrom)", cfg.ClientSecret)
	case MethodClientCertificate:
		need("tenant", cfg.Tenant)
		need("clientId", cfg.ClientID)
		if len(cfg.Certificate) == 0 {
			missing = append(missing, "certificate")
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("auth (%s): missing %s", method, strings.Join(missing, ", "))
	}

	var cred azcore.TokenCredential
	switch method {
	case MethodClientSecret:
		cred, err = azidentity.NewClientSecretCredential(cfg.Tenant, cfg.ClientID, cfg.ClientSecret,
			&azidentity.ClientSecretCredentialOptions{ClientOptions: co, DisableInstanceDiscovery: noDiscovery})
	case MethodClientCertificate:
		certs, key, perr := azidentity.ParseCertificates(cfg.Certificate, []byte(cfg.CertificatePassword))
		if perr != nil {
			return nil, fmt.Errorf("auth (clientCertificate): read the certificate: %w", perr)
		}
		cred, err = azidentity.NewClientCertificateCredential(cfg.Tenant, cfg.ClientID, certs, key,
			&azidentity.ClientCertificateCredentialOptions{ClientOptions: co, DisableInstanceDiscovery: noDiscovery, SendCertificateChain: true})
	case MethodWorkloadIdentity:
		cred, err = azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
			ClientOptions: co, ClientID: cfg.ClientID, TenantID: cfg.Tenant, TokenFilePath: cfg.TokenFile, DisableInstanceDiscovery: noDiscovery})
	case MethodManagedIdentity:
		opts := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: co}
		if cfg.ClientID != "" {
			opts.ID = azidentity.ClientID(cfg.ClientID)
		}
		cred, err = azidentity.NewManagedIdentityCredential(opts)
	case MethodAzureCLI:
		cred, err = azidentity.NewAzureCLICredential(&azidentity.AzureCLICredentialOptions{TenantID: cfg.Tenant})
	case MethodDefault:
		cred, err = azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{
			ClientOptions: co, TenantID: cfg.Tenant, DisableInstanceDiscovery: noDiscovery})
	default:
		return nil, fmt.Errorf("auth: unknown method %q: use one of %s", method, strings.Join(Methods, ", "))
	}
	if err != nil {
		return nil, fmt.Errorf("auth (%s): %w", method, err)
	}
	return cred, nil
}
