package pipeline

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/pbicopy/pbicopy/source"
)

// credential builds the Entra ID credential an auth block describes,
// reading a client secret from its file or from Key Vault first.
func (r *Runner) credential(ctx context.Context, a AuthSpec, cloudName, path string) (azcore.TokenCredential, error) {
	c, err := source.LookupCloud(cloudName)
	if err != nil {
		return nil, err
	}
	cfg := source.AuthConfig{
		Method: a.Method, Tenant: a.Tenant, ClientID: a.ClientID, ClientSecret: a.ClientSecret,
		CertificatePassword: a.CertificatePassword, TokenFile: a.TokenFile, AuthorityHost: a.AuthorityHost, Cloud: c.Name,
	}
	switch {
	case a.ClientSecretFile != "":
		data, err := os.ReadFile(a.ClientSecretFile)
		if err != nil {
			return nil, fmt.Errorf("%s.clientSecretFile: %w", path, err)
		}
		cfg.ClientSecret = strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
		if cfg.ClientSecret == "" {
			return nil, fmt.Errorf("%s.clientSecretFile: %s is empty", path, a.ClientSecretFile)
		}
	case a.ClientSecretFrom != "":
		ref, err := source.ParseSecretRef(a.ClientSecretFrom, c)
		if err != nil {
			return nil, fmt.Errorf("%s.clientSecretFrom: %w", path, err)
		}
		// The vault is read with the ambient identity of the process
		// (environment, workload identity, managed identity, Azure CLI).
		ambient, err := source.NewCredential(source.AuthConfig{Method: source.MethodDefault, AuthorityHost: a.AuthorityHost, Cloud: c.Name}, r.HTTPClient)
		if err != nil {
			return nil, fmt.Errorf("%s.clientSecretFrom: %w", path, err)
		}
		if cfg.ClientSecret, err = source.GetSecret(ctx, ref, ambient, r.HTTPClient); err != nil {
			return nil, fmt.Errorf("%s.clientSecretFrom: %w", path, err)
		}
	}
	if a.Certificate != "" {
		if cfg.Certificate, err = os.ReadFile(a.Certificate); err != nil {
			return nil, fmt.Errorf("%s.certificate: %w", path, err)
		}
	}
	cred, err := source.NewCredential(cfg, r.HTTPClient)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cred, nil
}
