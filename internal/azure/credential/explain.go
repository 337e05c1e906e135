package credential

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/go-json-experiment/json"
)

// AuthError is a token request Entra ID refused, in one line: the AADSTS
// code and what it means, the tenant and client, and what to do. It
// replaces azidentity's multi-line dump (the request line, the whole JSON
// body, a troubleshooting link) in messages; Unwrap still reaches it.
type AuthError struct {
	Method   string
	Tenant   string
	ClientID string
	Status   int    // of the token endpoint; 0 when no response came
	Code     string // "AADSTS7000215", or the OAuth error ("invalid_client")
	Meaning  string // what the code means, in a few words
	Advice   string // what to do
	// NoAnswer is why no answer came (Status 0): the connection failed
	// or the request timed out; "" when Entra ID answered.
	NoAnswer string
	err      error
}

func (e *AuthError) Error() string {
	var b strings.Builder
	if e.Status == 0 && e.NoAnswer != "" {
		b.WriteString("the token request to Entra ID got no answer: " + e.NoAnswer)
	} else {
		b.WriteString("Entra ID refused the token request")
	}
	if e.Code != "" {
		fmt.Fprintf(&b, ": %s", e.Code)
		if e.Meaning != "" {
			fmt.Fprintf(&b, ": %s", e.Meaning)
		}
	} else if e.Status != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.Status)
	}
	var who []string
	if e.Method != "" {
		who = append(who, "auth "+e.Method)
	}
	if e.Tenant != "" {
		who = append(who, "tenant "+e.Tenant)
	}
	if e.ClientID != "" {
		who = append(who, "client "+e.ClientID)
	}
	if len(who) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(who, ", "))
	}
	if e.Advice != "" {
		fmt.Fprintf(&b, "; %s", e.Advice)
	}
	return b.String()
}

func (e *AuthError) Unwrap() error { return e.err }

// Permanent reports whether asking again would be refused again: Entra
// ID answered 4xx (a wrong secret, an unknown client or tenant), not a
// throttling or an outage. Every partition of a job would meet it, so
// the job stops at the first.
func (e *AuthError) Permanent() bool {
	return e.Status >= 400 && e.Status < 500 && e.Status != http.StatusTooManyRequests && e.Status != http.StatusRequestTimeout
}

// aadsts is what an AADSTS code means and what to do about it; the codes
// a service principal meets (learn.microsoft.com/entra/identity-platform/
// reference-error-codes).
var aadsts = map[int][2]string{
	7000215: {"invalid client secret", "use the secret's Value from the app registration (not its Secret ID), and check that it is the secret of this client"},
	7000222: {"the client secret has expired", "create a new secret in the app registration and update the one the job reads"},
	7000218: {"no client secret or assertion was sent", "give the credential: a client secret, a certificate, or a federated token"},
	700016:  {"application not found in the tenant", "check clientId, and that the app is registered (or consented) in this tenant"},
	7000112: {"the application is disabled", "enable the app (its service principal) in the tenant"},
	90002:   {"tenant not found", "check tenant: the directory (tenant) id or a verified domain of the directory"},
	900023:  {"the tenant is not a valid tenant id or domain", "check tenant: the directory (tenant) id or a verified domain of the directory"},
	900144:  {"a required parameter is missing", "check that tenant and clientId are set"},
	700027:  {"the client assertion's signature is invalid", "use a certificate uploaded to the app registration (Certificates & secrets), with its private key, not expired"},
	700024:  {"the client assertion is not within its valid time range", "check the clock of this machine, and for workload identity that the projected token is fresh"},
	70021:   {"no federated identity credential matches the token", "add a federated credential to the app for this issuer, subject (system:serviceaccount:<namespace>:<name>) and audience api://AzureADTokenExchange"},
	700211:  {"no federated identity credential matches the token's issuer", "check the issuer of the federated credential: the cluster's OIDC issuer URL"},
	700212:  {"no federated identity credential matches the token's audience", "the audience must be api://AzureADTokenExchange"},
	700213:  {"no federated identity credential matches the token's subject", "check the subject of the federated credential: system:serviceaccount:<namespace>:<service account>"},
	70011:   {"the scope is invalid", "check source.powerbi.cloud (and the storage account's cloud): the scope follows the cloud"},
	500011:  {"the resource (Power BI or Storage) is not in the tenant", "check the cloud, and that the tenant has Power BI (or the storage account is in it)"},
	53003:   {"blocked by Conditional Access", "ask the tenant's admins to exempt the service principal from the policy, or to allow this location"},
	50053:   {"the account is locked", "ask the tenant's admins"},
}

var aadstsRE = regexp.MustCompile(`AADSTS(\d+)`)

// Explain turns a failure to get a token into an *AuthError when Entra
// ID answered it, and leaves any other error as it is.
func Explain(err error, method, tenant, clientID string) error {
	var afe *azidentity.AuthenticationFailedError
	if err == nil || !errors.As(err, &afe) {
		return err
	}
	ae := &AuthError{Method: method, Tenant: tenant, ClientID: clientID, err: err}
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
		Codes       []int  `json:"error_codes"`
	}
	if resp := afe.RawResponse; resp != nil {
		ae.Status = resp.StatusCode
		if data, perr := runtime.Payload(resp); perr == nil {
			_ = json.Unmarshal(data, &body, json.RejectUnknownMembers(false))
		}
	} else {
		ae.NoAnswer = noAnswer(afe.Error())
	}
	code := 0
	if len(body.Codes) > 0 {
		code = body.Codes[0]
	} else if m := aadstsRE.FindStringSubmatch(body.Description + " " + err.Error()); m != nil {
		code, _ = strconv.Atoi(m[1])
	}
	switch {
	case code != 0:
		ae.Code = "AADSTS" + strconv.Itoa(code)
		if m, ok := aadsts[code]; ok {
			ae.Meaning, ae.Advice = m[0], m[1]
		} else if d := firstSentence(body.Description); d != "" {
			ae.Meaning = d
		}
	case body.Error != "":
		ae.Code = body.Error
		ae.Meaning = firstSentence(body.Description)
	}
	if ae.Advice == "" && ae.Status >= 500 {
		ae.Advice = "Entra ID failed; try again later"
	}
	return ae
}

// noAnswer is why a token request got no answer, from azidentity's
// message ("ClientSecretCredential: <cause>. To troubleshoot, visit ...",
// the cause sometimes on lines of its own), in one line.
func noAnswer(msg string) string {
	msg, _, _ = strings.Cut(msg, " To troubleshoot, visit ")
	msg = strings.Join(strings.Fields(msg), " ")
	if cred, rest, ok := strings.Cut(msg, ": "); ok && strings.HasSuffix(cred, "Credential") {
		msg = rest
	}
	msg = strings.TrimSuffix(strings.TrimSpace(msg), ".")
	if msg == "" {
		return "no response"
	}
	return msg
}

// firstSentence is the first line of an Entra description without its
// code prefix.
func firstSentence(s string) string {
	s, _, _ = strings.Cut(s, "\r")
	s, _, _ = strings.Cut(s, "\n")
	if _, rest, ok := strings.Cut(s, ": "); ok && strings.HasPrefix(s, "AADSTS") {
		s = rest
	}
	return strings.TrimSpace(s)
}

// explained is a credential whose refusals are *AuthError.
type explained struct {
	azcore.TokenCredential
	method, tenant, clientID string
}

func (c explained) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tok, err := c.TokenCredential.GetToken(ctx, opts)
	return tok, Explain(err, c.method, c.tenant, c.clientID)
}
