package source

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
)

// SecretRef names a secret in Azure Key Vault.
type SecretRef struct {
	VaultURL string // https://<vault>.vault.azure.net/
	Name     string
	Version  string // "" is the latest
}

// ParseSecretRef parses keyvault://<vault>/<secret>[/<version>] (the vault
// in the given cloud) or a secret identifier as the portal shows it,
// https://<vault>.vault.azure.net/secrets/<secret>[/<version>].
func ParseSecretRef(ref string, c Cloud) (SecretRef, error) {
	u, err := url.Parse(ref)
	if err != nil {
		return SecretRef{}, fmt.Errorf("secret reference: not a URL: %w", err)
	}
	var parts []string
	var vault string
	switch u.Scheme {
	case "keyvault":
		if u.Host == "" {
			return SecretRef{}, fmt.Errorf("secret reference %q: write keyvault://<vault>/<secret>[/<version>]", ref)
		}
		vault = "https://" + u.Host + "." + c.VaultSuffix + "/"
		parts = strings.Split(strings.Trim(u.Path, "/"), "/")
	case "https":
		vault = "https://" + u.Host + "/"
		p := strings.Split(strings.Trim(u.Path, "/"), "/")
		if len(p) < 2 || p[0] != "secrets" {
			return SecretRef{}, fmt.Errorf("secret reference %q: a Key Vault secret URL looks like https://<vault>.%s/secrets/<secret>[/<version>]", ref, c.VaultSuffix)
		}
		parts = p[1:]
	default:
		return SecretRef{}, fmt.Errorf("secret reference %q: use keyvault://<vault>/<secret>[/<version>]", ref)
	}
	if len(parts) < 1 || len(parts) > 2 || parts[0] == "" {
		return SecretRef{}, fmt.Errorf("secret reference %q: give the secret name and optionally its version", ref)
	}
	r := SecretRef{VaultURL: vault, Name: parts[0]}
	if len(parts) == 2 {
		r.Version = parts[1]
	}
	return r, nil
}

// realVault reports whether host is a Key Vault of a Microsoft cloud, whose
// authentication challenge can be verified to name it.
func realVault(host string) bool {
	for _, c := range Clouds {
		if strings.HasSuffix(host, "."+c.VaultSuffix) {
			return true
		}
	}
	return false
}

// GetSecret reads a secret from Key Vault with cred. httpClient, when not
// nil, carries the requests. The secret's value is returned and never
// logged; errors name the vault and the secret, never the value.
func GetSecret(ctx context.Context, ref SecretRef, cred azcore.TokenCredential, httpClient *http.Client) (string, error) {
	u, err := url.Parse(ref.VaultURL)
	if err != nil {
		return "", err
	}
	// Key Vault's challenge names the resource a token is for; only a
	// vault of a Microsoft cloud is trusted to name it, and a local test
	// vault only on loopback. Any other host could ask for a token of any
	// resource.
	real := realVault(u.Hostname())
	if !real && !isLoopback(u.Hostname()) {
		return "", fmt.Errorf("key vault %s: not a Key Vault host (<vault>.%s)", u.Host, Clouds["public"].VaultSuffix)
	}
	opts := &azsecrets.ClientOptions{DisableChallengeResourceVerification: !real}
	if httpClient != nil {
		opts.Transport = httpClient
	}
	client, err := azsecrets.NewClient(ref.VaultURL, cred, opts)
	if err != nil {
		return "", fmt.Errorf("key vault %s: %w", u.Host, err)
	}
	resp, err := client.GetSecret(ctx, ref.Name, ref.Version, nil)
	if err != nil {
		return "", fmt.Errorf("read secret %s from key vault %s (the identity needs the Key Vault Secrets User role): %w", ref.Name, u.Host, err)
	}
	if resp.Value == nil || *resp.Value == "" {
		return "", fmt.Errorf("secret %s in key vault %s is empty", ref.Name, u.Host)
	}
	return *resp.Value, nil
}
