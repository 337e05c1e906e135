package azure

// The environment variables an auth block falls back on when it names a
// service principal (tenant and clientId) but not its credential, as
// azidentity's EnvironmentCredential reads them.
const (
	EnvClientSecret              = "AZURE_CLIENT_SECRET"
	EnvClientCertificatePath     = "AZURE_CLIENT_CERTIFICATE_PATH"
	EnvClientCertificatePassword = "AZURE_CLIENT_CERTIFICATE_PASSWORD"
)

// SecretEnv lists, in order, the variables a client secret is read from
// when an auth block gives none: AZURE_CLIENT_SECRET, the name azidentity
// and the Azure tools use, then PBI_CLIENT_SECRET, the name pbicopy's jobs
// and commands have used.
var SecretEnv = []string{EnvClientSecret, "PBI_CLIENT_SECRET"}

// EnvCredential says what an auth block leaves to the environment.
type EnvCredential struct {
	// Field is the field the environment stands for: clientSecret or
	// certificate; "" when the block needs nothing from the environment.
	Field string
	// Vars are the variables read for it, in order.
	Vars []string
	// Var is the one that gave it; "" when none of Vars is set.
	Var string
}

// FromEnv completes an auth block that names a service principal but not
// its credential, from the environment, as azidentity's
// EnvironmentCredential does. Fields the block gives always win.
//
//   - With method clientSecret and no clientSecret, clientSecretFile or
//     clientSecretFrom, the secret is the first of SecretEnv that is set
//     and not empty.
//   - With method clientCertificate and no certificate, the certificate is
//     the file AZURE_CLIENT_CERTIFICATE_PATH names, and its password, unless
//     certificatePassword is given, AZURE_CLIENT_CERTIFICATE_PASSWORD.
//   - With no method, tenant and clientId given and no secret nor
//     certificate, the secret as above, else the certificate as above.
//
// It returns the completed block and what it read; a block needing the
// environment where none of the variables is set comes back unchanged,
// with env.Var "". lookup reads the environment (os.LookupEnv).
func (a AuthSpec) FromEnv(lookup func(string) (string, bool)) (AuthSpec, EnvCredential) {
	get := func(name string) string {
		v, _ := lookup(name)
		return v
	}
	secret := func() (AuthSpec, EnvCredential, bool) {
		for _, name := range SecretEnv {
			if v := get(name); v != "" {
				a.ClientSecret = v
				return a, EnvCredential{Field: "clientSecret", Vars: SecretEnv, Var: name}, true
			}
		}
		return a, EnvCredential{Field: "clientSecret", Vars: SecretEnv}, false
	}
	certificate := func() (AuthSpec, EnvCredential, bool) {
		env := EnvCredential{Field: "certificate", Vars: []string{EnvClientCertificatePath}}
		path := get(EnvClientCertificatePath)
		if path == "" {
			return a, env, false
		}
		a.Certificate, env.Var = path, EnvClientCertificatePath
		if a.CertificatePassword == "" {
			a.CertificatePassword = get(EnvClientCertificatePassword)
		}
		return a, env, true
	}
	noSecret := a.ClientSecret == "" && a.ClientSecretFile == "" && a.ClientSecretFrom == ""
	switch {
	case a.Method == MethodClientSecret && noSecret:
		a, env, _ := secret()
		return a, env
	case a.Method == MethodClientCertificate && a.Certificate == "":
		a, env, _ := certificate()
		return a, env
	case a.Method == "" && noSecret && a.Certificate == "" && a.Tenant != "" && a.ClientID != "":
		if a, env, ok := secret(); ok {
			return a, env
		}
		if a, env, ok := certificate(); ok {
			return a, env
		}
		return a, EnvCredential{Field: "clientSecret", Vars: append(append([]string{}, SecretEnv...), EnvClientCertificatePath)}
	}
	return a, EnvCredential{}
}
