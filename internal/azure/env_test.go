package azure

import (
	"testing"
)

func TestFromEnv(t *testing.T) {
	all := map[string]string{
		"AZURE_CLIENT_SECRET":               "azure-secret",
		"PBI_CLIENT_SECRET":                 "pbi-secret",
		"AZURE_CLIENT_CERTIFICATE_PATH":     "/run/app.pem",
		"AZURE_CLIENT_CERTIFICATE_PASSWORD": "cert-password",
	}
	env := func(names ...string) func(string) (string, bool) {
		return func(n string) (string, bool) {
			for _, m := range names {
				if m == n {
					v, ok := all[n]
					return v, ok
				}
			}
			return "", false
		}
	}
	empty := func(n string) (string, bool) { return "", n == "AZURE_CLIENT_SECRET" }
	sp := AuthSpec{Tenant: "t", ClientID: "c"}
	with := func(f func(*AuthSpec)) AuthSpec { a := sp; f(&a); return a }
	for _, c := range []struct {
		name   string
		auth   AuthSpec
		lookup func(string) (string, bool)
		want   AuthSpec
		field  string
		from   string
	}{
		{"secret: AZURE_CLIENT_SECRET first", with(func(a *AuthSpec) { a.Method = MethodClientSecret }), env("AZURE_CLIENT_SECRET", "PBI_CLIENT_SECRET"),
			with(func(a *AuthSpec) { a.Method, a.ClientSecret = MethodClientSecret, "azure-secret" }), "clientSecret", "AZURE_CLIENT_SECRET"},
		{"secret: then PBI_CLIENT_SECRET", with(func(a *AuthSpec) { a.Method = MethodClientSecret }), env("PBI_CLIENT_SECRET"),
			with(func(a *AuthSpec) { a.Method, a.ClientSecret = MethodClientSecret, "pbi-secret" }), "clientSecret", "PBI_CLIENT_SECRET"},
		{"secret: an empty AZURE_CLIENT_SECRET is not set", sp, func(n string) (string, bool) {
			if n == "PBI_CLIENT_SECRET" {
				return "pbi-secret", true
			}
			return empty(n)
		}, with(func(a *AuthSpec) { a.ClientSecret = "pbi-secret" }), "clientSecret", "PBI_CLIENT_SECRET"},
		{"secret: none set", with(func(a *AuthSpec) { a.Method = MethodClientSecret }), empty,
			with(func(a *AuthSpec) { a.Method = MethodClientSecret }), "clientSecret", ""},
		{"no method: the secret before the certificate", sp, env("PBI_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH"),
			with(func(a *AuthSpec) { a.ClientSecret = "pbi-secret" }), "clientSecret", "PBI_CLIENT_SECRET"},
		{"no method: the certificate without a secret", sp, env("AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_CLIENT_CERTIFICATE_PASSWORD"),
			with(func(a *AuthSpec) { a.Certificate, a.CertificatePassword = "/run/app.pem", "cert-password" }), "certificate", "AZURE_CLIENT_CERTIFICATE_PATH"},
		{"no method: nothing set", sp, empty, sp, "clientSecret", ""},
		{"certificate: the job's password wins", with(func(a *AuthSpec) { a.Method, a.CertificatePassword = MethodClientCertificate, "job-password" }), env("AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_CLIENT_CERTIFICATE_PASSWORD"),
			with(func(a *AuthSpec) {
				a.Method, a.Certificate, a.CertificatePassword = MethodClientCertificate, "/run/app.pem", "job-password"
			}), "certificate", "AZURE_CLIENT_CERTIFICATE_PATH"},
		{"the job's secret wins", with(func(a *AuthSpec) { a.ClientSecretFile = "/run/secret" }), env("AZURE_CLIENT_SECRET"),
			with(func(a *AuthSpec) { a.ClientSecretFile = "/run/secret" }), "", ""},
		{"the job's certificate wins", with(func(a *AuthSpec) { a.Certificate = "/job.pem" }), env("AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH"),
			with(func(a *AuthSpec) { a.Certificate = "/job.pem" }), "", ""},
		{"no clientId: not a service principal", AuthSpec{Tenant: "t"}, env("AZURE_CLIENT_SECRET"), AuthSpec{Tenant: "t"}, "", ""},
		{"another method", with(func(a *AuthSpec) { a.Method = MethodWorkloadIdentity }), env("AZURE_CLIENT_SECRET"),
			with(func(a *AuthSpec) { a.Method = MethodWorkloadIdentity }), "", ""},
	} {
		got, e := c.auth.FromEnv(c.lookup)
		if got != c.want || e.Field != c.field || e.Var != c.from {
			t.Errorf("%s: FromEnv = %+v, %+v; want %+v, field %q from %q", c.name, got, e, c.want, c.field, c.from)
		}
	}
}
