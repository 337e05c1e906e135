package fakepbi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

func credential(t *testing.T, srv *Server, tenant, client, secret string) *azidentity.ClientSecretCredential {
	t.Helper()
	cred, err := azidentity.NewClientSecretCredential(tenant, client, secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{
			Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: srv.AuthorityHost()},
			Transport: srv.Client(),
		},
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatalf("NewClientSecretCredential: %v", err)
	}
	return cred
}

func getAzToken(cred azcore.TokenCredential) (azcore.AccessToken, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{PowerBIScope}})
}

func TestAzidentityClientSecretCredential(t *testing.T) {
	srv := startServer(t, Options{TokenLifetime: 90 * time.Minute})
	o := srv.Options()
	tok, err := getAzToken(credential(t, srv, o.TenantID, o.ClientID, o.ClientSecret))
	if err != nil {
		t.Fatalf("GetToken: %v", err)
	}
	if until := time.Until(tok.ExpiresOn); until < 85*time.Minute || until > 91*time.Minute {
		t.Errorf("ExpiresOn in %v, want about 90m (expires_in from TokenLifetime)", until)
	}
	if srv.TokenRequests() != 1 {
		t.Errorf("TokenRequests = %d, want 1", srv.TokenRequests())
	}
	// The token works on executeQueries.
	b := runQuery(t, srv, tok.Token, "EVALUATE TOPN(1, Sales, Sales[OrderID], ASC)", true)
	if got := decode(t, b).ints(t, "Sales[OrderID]"); len(got) != 1 || got[0] != 1 {
		t.Errorf("OrderIDs = %v, want [1]", got)
	}
}

func TestAzidentityWrongSecret(t *testing.T) {
	srv := startServer(t, Options{})
	o := srv.Options()
	_, err := getAzToken(credential(t, srv, o.TenantID, o.ClientID, "not-the-secret"))
	if err == nil || !strings.Contains(err.Error(), "AADSTS7000215") {
		t.Fatalf("GetToken with a wrong secret: %v, want an error naming AADSTS7000215", err)
	}
	var authErr *azidentity.AuthenticationFailedError
	if !errors.As(err, &authErr) || authErr.RawResponse == nil || authErr.RawResponse.StatusCode != http.StatusUnauthorized {
		t.Errorf("error %T, want an AuthenticationFailedError with a 401 response", err)
	}
}

func TestAzidentityUnknownClient(t *testing.T) {
	srv := startServer(t, Options{})
	o := srv.Options()
	_, err := getAzToken(credential(t, srv, o.TenantID, "00000000-0000-0000-0000-00000000dead", o.ClientSecret))
	if err == nil || !strings.Contains(err.Error(), "AADSTS700016") {
		t.Fatalf("GetToken with an unknown client: %v, want AADSTS700016", err)
	}
}

// tokenPost posts form to the token endpoint of tenant and decodes the
// answer.
func tokenPost(t *testing.T, srv *Server, tenant string, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := srv.Client().PostForm(srv.AuthorityHost()+tenant+"/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return resp.StatusCode, m
}

func TestTokenEndpointErrors(t *testing.T) {
	srv := startServer(t, Options{})
	o := srv.Options()
	good := func() url.Values {
		return url.Values{
			"grant_type":    {"client_credentials"},
			"client_id":     {o.ClientID},
			"client_secret": {o.ClientSecret},
			"scope":         {PowerBIScope + " openid profile offline_access"},
		}
	}
	with := func(k, v string) url.Values {
		f := good()
		if v == "" {
			f.Del(k)
		} else {
			f.Set(k, v)
		}
		return f
	}
	cases := []struct {
		name   string
		tenant string
		form   url.Values
		status int
		error  string
		code   float64
	}{
		{"good", o.TenantID, good(), 200, "", 0},
		{"wrong secret", o.TenantID, with("client_secret", "x"), 401, "invalid_client", 7000215},
		{"no secret", o.TenantID, with("client_secret", ""), 401, "invalid_client", 7000216},
		{"unknown client", o.TenantID, with("client_id", "nobody"), 400, "unauthorized_client", 700016},
		{"graph scope", o.TenantID, with("scope", "https://graph.microsoft.com/.default"), 400, "invalid_scope", 70011},
		{"scope without .default", o.TenantID, with("scope", "https://analysis.windows.net/powerbi/api"), 400, "invalid_scope", 70011},
		{"two resources", o.TenantID, with("scope", PowerBIScope+" https://graph.microsoft.com/.default"), 400, "invalid_scope", 70011},
		{"no scope", o.TenantID, with("scope", ""), 400, "invalid_request", 900144},
		{"password grant", o.TenantID, with("grant_type", "password"), 400, "unsupported_grant_type", 70003},
		{"unknown tenant", "contoso.onmicrosoft.com", good(), 400, "invalid_request", 90002},
		{"assertion not configured", o.TenantID, with("client_assertion_type", jwtBearer), 401, "invalid_client", 700027},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, m := tokenPost(t, srv, c.tenant, c.form)
			if status != c.status {
				t.Fatalf("status %d, want %d: %v", status, c.status, m)
			}
			if c.status == 200 {
				if m["token_type"] != "Bearer" || m["expires_in"] != 3600.0 || m["ext_expires_in"] != 3600.0 || m["access_token"] == "" {
					t.Errorf("token response %v", m)
				}
				return
			}
			codes, _ := m["error_codes"].([]any)
			desc, _ := m["error_description"].(string)
			if m["error"] != c.error || len(codes) != 1 || codes[0] != c.code || !strings.HasPrefix(desc, "AADSTS") {
				t.Errorf("error %v", m)
			}
			for _, k := range []string{"timestamp", "trace_id", "correlation_id", "error_uri"} {
				if m[k] == nil {
					t.Errorf("no %s in %v", k, m)
				}
			}
		})
	}
}

func TestTokenClientAssertion(t *testing.T) {
	srv := startServer(t, Options{ClientAssertionCheck: func(a string) error {
		if a != "good.jwt.assertion" {
			return errors.New("the assertion is not signed by a registered certificate")
		}
		return nil
	}})
	o := srv.Options()
	if o.ClientSecret != "" {
		t.Fatalf("ClientSecret defaulted to %q although ClientAssertionCheck is set", o.ClientSecret)
	}
	form := func(assertion string) url.Values {
		return url.Values{
			"grant_type":            {"client_credentials"},
			"client_id":             {o.ClientID},
			"client_assertion_type": {jwtBearer},
			"client_assertion":      {assertion},
			"scope":                 {PowerBIScope},
		}
	}
	if status, m := tokenPost(t, srv, o.TenantID, form("good.jwt.assertion")); status != 200 || m["access_token"] == nil {
		t.Errorf("good assertion: %d %v", status, m)
	}
	status, m := tokenPost(t, srv, o.TenantID, form("forged"))
	if desc, _ := m["error_description"].(string); status != 401 || !strings.Contains(desc, "AADSTS700027") || !strings.Contains(desc, "registered certificate") {
		t.Errorf("bad assertion: %d %v", status, m)
	}
	// With no secret configured, no secret is accepted.
	f := url.Values{"grant_type": {"client_credentials"}, "client_id": {o.ClientID}, "client_secret": {"anything"}, "scope": {PowerBIScope}}
	if status, m := tokenPost(t, srv, o.TenantID, f); status != 401 || m["error"] != "invalid_client" {
		t.Errorf("secret on an assertion-only app: %d %v", status, m)
	}
}

func TestTokenBasicAuth(t *testing.T) {
	srv := startServer(t, Options{})
	o := srv.Options()
	req, _ := http.NewRequest(http.MethodPost, srv.AuthorityHost()+o.TenantID+"/oauth2/v2.0/token",
		strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "scope": {PowerBIScope}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(o.ClientID), url.QueryEscape(o.ClientSecret))
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("client_secret_basic: status %d", resp.StatusCode)
	}
}

func TestOpenIDConfiguration(t *testing.T) {
	srv := startServer(t, Options{})
	o := srv.Options()
	resp, err := srv.Client().Get(srv.AuthorityHost() + o.TenantID + "/v2.0/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	base := srv.URL() + "/" + o.TenantID
	if doc["issuer"] != base+"/v2.0" || doc["token_endpoint"] != base+"/oauth2/v2.0/token" || doc["authorization_endpoint"] != base+"/oauth2/v2.0/authorize" {
		t.Errorf("configuration %v", doc)
	}
	resp, err = srv.Client().Get(srv.AuthorityHost() + "other-tenant/v2.0/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("unknown tenant: status %d, want 400", resp.StatusCode)
	}
}
