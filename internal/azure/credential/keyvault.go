package credential

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/pbicopy/pbicopy/internal/azure"
)

// GetSecret reads a secret from Key Vault with cred. httpClient, when not
// nil, carries the requests. The secret's value is returned and never
// logged; errors name the vault and the secret, never the value.
func GetSecret(ctx context.Context, ref azure.SecretRef, cred azcore.TokenCredential, httpClient *http.Client) (string, error) {
	u, err := url.Parse(ref.VaultURL)
	if err != nil {
		return "", err
	}
	// Key Vault's challenge names the resource a token is for; only a
	// vault of a Microsoft cloud is trusted to name it, and a local test
	// vault only on loopback. Any other host could ask for a token of any
	// resource.
	real := azure.IsVaultHost(u.Hostname())
	if !real && !azure.IsLoopback(u.Hostname()) {
		return "", fmt.Errorf("key vault %s: not a Key Vault host (<vault>.%s)", u.Host, azure.Clouds["public"].VaultSuffix)
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
