package azure

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/pbicopy/pbicopy/internal/spec"
)

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
var Methods = spec.Set("authMethod")

// AuthSpec is the auth block of a job file: how to get Entra ID tokens.
// Secrets in it are never logged. A block that names a service principal
// but not its credential takes it from the environment (FromEnv): the job
// loader and credential.New apply it before Validate and Build.
type AuthSpec struct {
	Method              string `yaml:"method" enum:"@authMethod" defaultDoc:"clientSecret when a secret is given, clientCertificate when a certificate is (with tenant and clientId and neither: from the environment, see clientSecret and certificate)" doc:"How to get a token: default is DefaultAzureCredential (environment variables, workload identity, managed identity, Azure CLI)."`
	Tenant              string `yaml:"tenant" doc:"Entra ID tenant id (workloadIdentity: default AZURE_TENANT_ID)."`
	ClientID            string `yaml:"clientId" doc:"App registration (client) id; for managedIdentity, a user-assigned identity's client id (optional)."`
	ClientSecret        string `yaml:"clientSecret" defaultDoc:"AZURE_CLIENT_SECRET, else PBI_CLIENT_SECRET, for method clientSecret (or no method, with tenant and clientId) when no secret field is given" doc:"Client secret; write ${ENV_VAR}, never the secret itself."`
	ClientSecretFile    string `yaml:"clientSecretFile" doc:"File holding the client secret (a mounted Kubernetes secret); one trailing newline is ignored."`
	ClientSecretFrom    string `yaml:"clientSecretFrom" doc:"Key Vault secret holding the client secret: keyvault://<vault>/<secret>[/<version>], read with the ambient credential (DefaultAzureCredential)."`
	Certificate         string `yaml:"certificate" defaultDoc:"AZURE_CLIENT_CERTIFICATE_PATH, for method clientCertificate (or no method, with tenant and clientId, when no secret is given nor set)" doc:"clientCertificate: PEM or PFX file with the certificate and its private key."`
	CertificatePassword string `yaml:"certificatePassword" defaultDoc:"AZURE_CLIENT_CERTIFICATE_PASSWORD, with a certificate from AZURE_CLIENT_CERTIFICATE_PATH" doc:"Password of the certificate file, if any; write ${ENV_VAR}."`
	TokenFile           string `yaml:"tokenFile" defaultDoc:"AZURE_FEDERATED_TOKEN_FILE" doc:"workloadIdentity: the federated token file."`
	AuthorityHost       string `yaml:"authorityHost" defaultDoc:"AZURE_AUTHORITY_HOST, else the cloud's" doc:"Entra ID authority host."`
}

// SecretFields are the fields of an AuthSpec that hold a secret.
var SecretFields = []string{"clientSecret", "certificatePassword"}

// EffectiveMethod is the method a resolves to: Method, else clientSecret
// when a secret is given, else clientCertificate when a certificate is,
// else "" (none).
func (a AuthSpec) EffectiveMethod() string {
	switch {
	case a.Method != "":
		return a.Method
	case a.ClientSecret != "" || a.ClientSecretFile != "" || a.ClientSecretFrom != "":
		return MethodClientSecret
	case a.Certificate != "":
		return MethodClientCertificate
	}
	return ""
}

// Validate checks that the fields a's method needs are given and no other,
// for the named cloud. Each error starts with the field it is about.
func (a AuthSpec) Validate(cloud string) error {
	var errs []error
	fail := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	required := func(field, value, hint string) {
		if strings.TrimSpace(value) == "" {
			fail(field, "required: %s", hint)
		}
	}
	secrets := 0
	for _, v := range []string{a.ClientSecret, a.ClientSecretFile, a.ClientSecretFrom} {
		if v != "" {
			secrets++
		}
	}
	method := a.EffectiveMethod()
	switch {
	case method == "" && a.Tenant != "" && a.ClientID != "":
		return errors.New("required: a credential: clientSecret (or clientSecretFile, clientSecretFrom) or certificate, or one of " + envList(append(append([]string{}, SecretEnv...), EnvClientCertificatePath), "or") + " set in the environment; or method: workloadIdentity, managedIdentity, azureCLI or default")
	case method == "":
		return errors.New("required: a credential: clientSecret (or clientSecretFile, clientSecretFrom), certificate, or method: workloadIdentity, managedIdentity, azureCLI or default")
	case !slices.Contains(Methods, method):
		return spec.Check(a)
	}
	unused := func(field, value string) {
		if value != "" {
			fail(field, "not used by method %s: remove it, or set the method that uses it", method)
		}
	}
	switch method {
	case MethodClientSecret:
		required("tenant", a.Tenant, "the Entra ID tenant id")
		required("clientId", a.ClientID, "the app registration (client) id")
		if secrets == 0 {
			fail("clientSecret", "required: clientSecret, clientSecretFile or clientSecretFrom, or %s set in the environment", envList(SecretEnv, "or"))
		} else if secrets > 1 {
			errs = append(errs, errors.New("give only one of clientSecret, clientSecretFile and clientSecretFrom"))
		}
		unused("certificate", a.Certificate)
		unused("certificatePassword", a.CertificatePassword)
		unused("tokenFile", a.TokenFile)
	case MethodClientCertificate:
		required("tenant", a.Tenant, "the Entra ID tenant id")
		required("clientId", a.ClientID, "the app registration (client) id")
		required("certificate", a.Certificate, "a PEM or PFX file with the certificate and its private key, or "+EnvClientCertificatePath+" set in the environment")
		unused("clientSecret", a.ClientSecret)
		unused("clientSecretFile", a.ClientSecretFile)
		unused("clientSecretFrom", a.ClientSecretFrom)
		unused("tokenFile", a.TokenFile)
	default:
		for _, f := range [][2]string{{"clientSecret", a.ClientSecret}, {"clientSecretFile", a.ClientSecretFile}, {"clientSecretFrom", a.ClientSecretFrom}, {"certificate", a.Certificate}, {"certificatePassword", a.CertificatePassword}} {
			unused(f[0], f[1])
		}
		if method != MethodWorkloadIdentity {
			unused("tokenFile", a.TokenFile)
		}
	}
	if a.ClientSecretFrom != "" {
		c, _ := LookupCloud(cloud)
		if _, err := ParseSecretRef(a.ClientSecretFrom, c); err != nil {
			fail("clientSecretFrom", "%v", err)
		}
	}
	if a.AuthorityHost != "" {
		if u, err := url.Parse(a.AuthorityHost); err != nil || u.Host == "" || u.Scheme != "https" {
			fail("authorityHost", "%q is not an https URL, e.g. https://login.microsoftonline.com/", a.AuthorityHost)
		}
	}
	return errors.Join(errs...)
}

// envList writes names as "A, B or C".
func envList(names []string, conj string) string {
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " " + conj + " " + names[len(names)-1]
}
