package azure

import (
	"fmt"
	"net/url"
	"strings"
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

// IsVaultHost reports whether host is a Key Vault of a Microsoft cloud,
// whose authentication challenge can be trusted to name it.
func IsVaultHost(host string) bool {
	for _, c := range Clouds {
		if strings.HasSuffix(host, "."+c.VaultSuffix) {
			return true
		}
	}
	return false
}
