// Package credential builds the Entra ID token credentials of a job's auth
// blocks with azidentity, reading a client secret from its file or from
// Azure Key Vault first.
package credential

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/pbicopy/pbicopy/internal/azure"
	"github.com/pbicopy/pbicopy/internal/smallfile"
)

// New returns the credential an auth block describes in the named cloud,
// reading a client secret from its file (clientSecretFile) or from Key
// Vault (clientSecretFrom, with the ambient identity of the process) first.
// A block that names a service principal but not its credential takes it
// from the environment, as azure.AuthSpec.FromEnv says: AZURE_CLIENT_SECRET,
// then PBI_CLIENT_SECRET, then (without a method) the certificate file
// AZURE_CLIENT_CERTIFICATE_PATH.
// Secret and certificate files must be regular files of at most 16 KiB
// and 1 MiB (smallfile.Secret, smallfile.Certificate).
// field names the block in errors (source.powerbi.auth); httpClient, when
// not nil, carries every request (tests and the demo use it to trust a
// local fake).
func New(ctx context.Context, a azure.AuthSpec, cloudName, field string, httpClient *http.Client) (azcore.TokenCredential, error) {
	c, err := azure.LookupCloud(cloudName)
	if err != nil {
		return nil, err
	}
	a, env := a.FromEnv(os.LookupEnv)
	if env.Field != "" && env.Var == "" {
		return nil, fmt.Errorf("%s.%s: not given, and none of %s is set in the environment", field, env.Field, strings.Join(env.Vars, ", "))
	}
	cfg := Config{
		Method: a.Method, Tenant: a.Tenant, ClientID: a.ClientID, ClientSecret: a.ClientSecret,
		CertificatePassword: a.CertificatePassword, TokenFile: a.TokenFile, AuthorityHost: a.AuthorityHost, Cloud: c.Name,
	}
	switch {
	case a.ClientSecretFile != "":
		data, err := smallfile.Read(a.ClientSecretFile, smallfile.Secret)
		if err != nil {
			return nil, fmt.Errorf("%s.clientSecretFile: %w", field, err)
		}
		cfg.ClientSecret = strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
		if cfg.ClientSecret == "" {
			return nil, fmt.Errorf("%s.clientSecretFile: %s is empty", field, a.ClientSecretFile)
		}
	case a.ClientSecretFrom != "":
		ref, err := azure.ParseSecretRef(a.ClientSecretFrom, c)
		if err != nil {
			return nil, fmt.Errorf("%s.clientSecretFrom: %w", field, err)
		}
		// The vault is read with the ambient identity of the process
		// (environment, workload identity, managed identity, Azure CLI).
		ambient, err := Build(Config{Method: azure.MethodDefault, AuthorityHost: a.AuthorityHost, Cloud: c.Name}, httpClient)
		if err != nil {
			return nil, fmt.Errorf("%s.clientSecretFrom: %w", field, err)
		}
		if cfg.ClientSecret, err = GetSecret(ctx, ref, ambient, httpClient); err != nil {
			return nil, fmt.Errorf("%s.clientSecretFrom: %w", field, err)
		}
	}
	if a.Certificate != "" {
		if cfg.Certificate, err = smallfile.Read(a.Certificate, smallfile.Certificate); err != nil {
			return nil, fmt.Errorf("%s.certificate: %w", field, err)
		}
	}
	cred, err := Build(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	return cred, nil
}

// Config is an auth block with its secrets resolved. Secrets in it are
// never logged.
type Config struct {
	// Method is one of azure.Methods; "" means clientSecret when a secret
	// is given, else clientCertificate when a certificate is, else default.
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
func (a Config) EffectiveMethod() string {
	switch {
	case a.Method != "":
		return a.Method
	case a.ClientSecret != "":
		return azure.MethodClientSecret
	case len(a.Certificate) > 0:
		return azure.MethodClientCertificate
	}
	return azure.MethodDefault
}

// authorityHost resolves the authority host as azidentity does: the
// configured one, else AZURE_AUTHORITY_HOST, else the cloud's.
func (a Config) authorityHost() (string, error) {
	if a.AuthorityHost != "" {
		return a.AuthorityHost, nil
	}
	if h := os.Getenv("AZURE_AUTHORITY_HOST"); h != "" {
		return h, nil
	}
	c, err := azure.LookupCloud(a.Cloud)
	if err != nil {
		return "", err
	}
	return c.AuthorityHost, nil
}

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

// Build returns the credential cfg describes. httpClient, when not nil,
// carries the token requests.
func Build(cfg Config, httpClient *http.Client) (azcore.TokenCredential, error) {
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
	case azure.MethodClientSecret:
		need("tenant", cfg.Tenant)
		need("clientId", cfg.ClientID)
		need("clientSecret (or clientSecretFile, clientSecretFrom)", cfg.ClientSecret)
	case azure.MethodClientCertificate:
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
	case azure.MethodClientSecret:
		cred, err = azidentity.NewClientSecretCredential(cfg.Tenant, cfg.ClientID, cfg.ClientSecret,
			&azidentity.ClientSecretCredentialOptions{ClientOptions: co, DisableInstanceDiscovery: noDiscovery})
	case azure.MethodClientCertificate:
		certs, key, perr := azidentity.ParseCertificates(cfg.Certificate, []byte(cfg.CertificatePassword))
		if perr != nil {
			return nil, fmt.Errorf("auth (clientCertificate): read the certificate: %w", perr)
		}
		cred, err = azidentity.NewClientCertificateCredential(cfg.Tenant, cfg.ClientID, certs, key,
			&azidentity.ClientCertificateCredentialOptions{ClientOptions: co, DisableInstanceDiscovery: noDiscovery, SendCertificateChain: true})
	case azure.MethodWorkloadIdentity:
		cred, err = azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
			ClientOptions: co, ClientID: cfg.ClientID, TenantID: cfg.Tenant, TokenFilePath: cfg.TokenFile, DisableInstanceDiscovery: noDiscovery})
	case azure.MethodManagedIdentity:
		opts := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: co}
		if cfg.ClientID != "" {
			opts.ID = azidentity.ClientID(cfg.ClientID)
		}
		cred, err = azidentity.NewManagedIdentityCredential(opts)
	case azure.MethodAzureCLI:
		cred, err = azidentity.NewAzureCLICredential(&azidentity.AzureCLICredentialOptions{TenantID: cfg.Tenant})
	case azure.MethodDefault:
		cred, err = azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{
			ClientOptions: co, TenantID: cfg.Tenant, DisableInstanceDiscovery: noDiscovery})
	default:
		return nil, fmt.Errorf("auth: unknown method %q: use one of %s", method, strings.Join(azure.Methods, ", "))
	}
	if err != nil {
		return nil, fmt.Errorf("auth (%s): %w", method, err)
	}
	return explained{TokenCredential: cred, method: method, tenant: cfg.Tenant, clientID: cfg.ClientID}, nil
}
