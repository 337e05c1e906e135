package fakepbi

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// PowerBIScope and KeyVaultScope are the resource scopes the token
// endpoint grants.
const (
	PowerBIScope  = "https://analysis.windows.net/powerbi/api/.default"
	KeyVaultScope = "https://vault.azure.net/.default"
)

// jwtBearer is the client_assertion_type of certificate and federated
// credentials.
const jwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// oidcScopes are the scopes MSAL adds to every request; Entra ignores them
// in the client credentials flow.
var oidcScopes = map[string]bool{"openid": true, "profile": true, "offline_access": true, "email": true}

// openIDConfiguration serves the tenant's OpenID Connect metadata, which
// MSAL reads before asking for a token. Its endpoints use the host the
// request was sent to, so the issuer matches the authority.
func (s *Server) openIDConfiguration(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	corr := correlationID(r)
	if !strings.EqualFold(tenant, s.opts.TenantID) {
		s.aadError(w, http.StatusBadRequest, "invalid_tenant", 90002, corr,
			fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.", tenant))
		return
	}
	base := "https://" + r.Host + "/" + s.opts.TenantID
	doc := map[string]any{
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"jwks_uri":                              base + "/discovery/v2.0/keys",
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"issuer":                                base + "/v2.0",
		"request_uri_parameter_supported":       false,
		"userinfo_endpoint":                     "https://graph.microsoft.com/oidc/userinfo",
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"device_authorization_endpoint":         base + "/oauth2/v2.0/devicecode",
		"http_logout_supported":                 true,
		"frontchannel_logout_supported":         true,
		"end_session_endpoint":                  base + "/oauth2/v2.0/logout",
		"claims_supported":                      []string{"sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"},
		"kerberos_endpoint":                     base + "/kerberos",
		"tenant_region_scope":                   "EU",
		"cloud_instance_name":                   "microsoftonline.com",
		"cloud_graph_host_name":                 "graph.windows.net",
		"msgraph_host":                          "graph.microsoft.com",
		"rbac_url":                              "https://pas.windows.net",
	}
	b, _ := json.Marshal(doc)
	setAADHeaders(w, corr)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "max-age=86400, private")
	_, _ = w.Write(b)
}

// token serves the client credentials grant as Entra ID does, with its error
// codes for the usual mistakes.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.nTokens++
	s.mu.Unlock()
	corr := correlationID(r)
	tenant := r.PathValue("tenant")
	if r.Method != http.MethodPost {
		s.aadError(w, http.StatusMethodNotAllowed, "invalid_request", 900561, corr,
			"The endpoint only accepts POST requests. Received a "+r.Method+" request.")
		return
	}
	if err := r.ParseForm(); err != nil {
		s.aadError(w, http.StatusBadRequest, "invalid_request", 900144, corr, "The request body must contain the following parameter: 'grant_type'.")
		return
	}
	f := r.PostForm
	if !strings.EqualFold(tenant, s.opts.TenantID) {
		s.aadError(w, http.StatusBadRequest, "invalid_request", 90002, corr,
			fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.", tenant))
		return
	}
	for _, p := range []string{"grant_type", "client_id", "scope"} {
		if f.Get(p) == "" && !(p == "client_id" && basicUser(r) != "") {
			s.aadError(w, http.StatusBadRequest, "invalid_request", 900144, corr, "The request body must contain the following parameter: '"+p+"'.")
			return
		}
	}
	if g := f.Get("grant_type"); g != "client_credentials" {
		s.aadError(w, http.StatusBadRequest, "unsupported_grant_type", 70003, corr, "The app requested an unsupported grant type '"+g+"'.")
		return
	}
	clientID, secret := f.Get("client_id"), f.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok {
		// client_secret_basic: both parts are form-encoded.
		if uu, err := url.QueryUnescape(u); err == nil {
			u = uu
		}
		if pp, err := url.QueryUnescape(p); err == nil {
			p = pp
		}
		clientID, secret = u, p
	}
	if !strings.EqualFold(clientID, s.opts.ClientID) {
		s.aadError(w, http.StatusBadRequest, "unauthorized_client", 700016, corr,
			fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", clientID, tenant))
		return
	}
	var resources []string
	for _, sc := range strings.Fields(f.Get("scope")) {
		if !oidcScopes[strings.ToLower(sc)] {
			resources = append(resources, sc)
		}
	}
	if len(resources) != 1 || resources[0] != PowerBIScope && resources[0] != KeyVaultScope {
		s.aadError(w, http.StatusBadRequest, "invalid_scope", 70011, corr,
			fmt.Sprintf("The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope %s is not valid.", f.Get("scope")))
		return
	}
	assertion, assertionType := f.Get("client_assertion"), f.Get("client_assertion_type")
	switch {
	case assertion != "" || assertionType != "":
		if assertionType != jwtBearer {
			s.aadError(w, http.StatusBadRequest, "invalid_request", 700023, corr,
				"Client assertion type '"+assertionType+"' is not supported. Use '"+jwtBearer+"'.")
			return
		}
		if s.opts.ClientAssertionCheck == nil {
			s.aadError(w, http.StatusUnauthorized, "invalid_client", 700027, corr,
				"Client assertion failed signature validation. No certificate or federated identity credential is registered on the application.")
			return
		}
		if err := s.opts.ClientAssertionCheck(assertion); err != nil {
			s.aadError(w, http.StatusUnauthorized, "invalid_client", 700027, corr,
				"Client assertion failed signature validation. "+err.Error())
			return
		}
	case secret == "":
		s.aadError(w, http.StatusUnauthorized, "invalid_client", 7000216, corr,
			"'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.")
		return
	case s.opts.ClientSecret == "" || subtle.ConstantTimeCompare([]byte(secret), []byte(s.opts.ClientSecret)) != 1:
		s.aadError(w, http.StatusUnauthorized, "invalid_client", 7000215, corr,
			fmt.Sprintf("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", s.opts.ClientID))
		return
	}

	tok := "fakepbi." + rand.Text() + rand.Text()
	lifetime := s.opts.TokenLifetime
	s.mu.Lock()
	s.tokens[tok] = issuedToken{expires: time.Now().Add(lifetime), scope: resources[0]}
	s.mu.Unlock()
	secs := int64(math.Ceil(lifetime.Seconds()))
	setAADHeaders(w, corr)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.Header().Set("Pragma", "no-cache")
	b := []byte(`{"token_type":"Bearer","expires_in":`)
	b = strconv.AppendInt(b, secs, 10)
	b = append(b, `,"ext_expires_in":`...)
	b = strconv.AppendInt(b, secs, 10)
	b = append(b, `,"access_token":`...)
	b = appendJSONString(b, tok)
	b = append(b, '}')
	_, _ = w.Write(b)
}

func basicUser(r *http.Request) string {
	u, _, _ := r.BasicAuth()
	return u
}

func correlationID(r *http.Request) string {
	if id := r.Header.Get("client-request-id"); id != "" {
		return id
	}
	return newUUID()
}

func setAADHeaders(w http.ResponseWriter, corr string) {
	w.Header().Set("client-request-id", corr)
	w.Header().Set("x-ms-request-id", newUUID())
}

// aadError writes an Entra ID error in its real shape, e.g.
// {"error":"invalid_client","error_description":"AADSTS7000215: ...","error_codes":[7000215],...}.
func (s *Server) aadError(w http.ResponseWriter, status int, code string, aadsts int, corr, message string) {
	trace := newUUID()
	now := time.Now().UTC().Format("2006-01-02 15:04:05Z")
	desc := fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s", aadsts, message, trace, corr, now)
	b, _ := json.Marshal(struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
		ErrorCodes       []int  `json:"error_codes"`
		Timestamp        string `json:"timestamp"`
		TraceID          string `json:"trace_id"`
		CorrelationID    string `json:"correlation_id"`
		ErrorURI         string `json:"error_uri"`
	}{code, desc, []int{aadsts}, now, trace, corr, "https://login.microsoftonline.com/error?code=" + strconv.Itoa(aadsts)})
	setAADHeaders(w, corr)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
