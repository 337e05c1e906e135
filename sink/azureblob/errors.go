package azureblob

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"

	"github.com/pbicopy/pbicopy/internal/azure"
	"github.com/pbicopy/pbicopy/sink"
)

// secrets lists the strings of a that must never be shown, in the forms
// they may take in a message.
func secrets(a sink.BlobAccount) []string {
	var out []string
	add := func(s string) {
		if len(s) < 4 {
			return
		}
		out = append(out, s)
		if u, err := url.QueryUnescape(s); err == nil && u != s {
			out = append(out, u)
		}
		if e := url.QueryEscape(s); e != s {
			out = append(out, e)
		}
	}
	addSAS := func(sas string) {
		add(strings.TrimPrefix(sas, "?"))
		if q, err := url.ParseQuery(strings.TrimPrefix(sas, "?")); err == nil {
			add(q.Get("sig"))
		}
	}
	add(a.AccountKey)
	addSAS(a.SASToken)
	if a.ConnectionString != "" {
		add(a.ConnectionString)
		if cs, err := azure.ParseConnectionString(a.ConnectionString); err == nil {
			add(cs.Key)
			addSAS(cs.SAS)
		}
	}
	return out
}

// wrap names the operation and the blob in err, turns an Azure error into
// one line with a hint, and removes secrets.
func (c *Container) wrap(op, name string, err error) error {
	return c.redactErr(fmt.Errorf("%s %s: %w", op, c.Location(name), describeAzure(err)))
}

// redactErr returns err, or an error wrapping it whose text has the
// account's secrets and any SAS signature masked.
func (c *Container) redactErr(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	red := redactText(msg, c.secrets)
	if red == msg {
		return err
	}
	return &messageError{msg: red, err: err}
}

// redactText masks secrets, and the value of every sig= parameter, in s.
func redactText(s string, secrets []string) string {
	for _, sec := range secrets {
		s = strings.ReplaceAll(s, sec, "[REDACTED]")
	}
	return sigRE.ReplaceAllString(s, "${1}[REDACTED]")
}

// messageError is err with another message: a redacted or shortened one.
type messageError struct {
	msg string
	err error
}

func (e *messageError) Error() string { return e.msg }
func (e *messageError) Unwrap() error { return e.err }

// describeAzure shortens an Azure response error, whose text spans many
// lines and includes the response body, to its status, error code and
// message, with a hint for the usual causes. Other errors are returned as
// they are, but a *url.Error loses its query string (which may hold a SAS
// token).
func describeAzure(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && !errors.As(err, new(*azcore.ResponseError)) {
		return &messageError{msg: fmt.Sprintf("%s %s: %v", ue.Op, sink.RedactURL(ue.URL), ue.Err), err: err}
	}
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return err
	}
	msg := fmt.Sprintf("HTTP %d", re.StatusCode)
	if re.ErrorCode != "" {
		msg += " " + re.ErrorCode
	}
	text := azureMessage(re)
	if text != "" {
		msg += ": " + text
	}
	const (
		authn = " (the credential was refused: a wrong or expired account key or SAS token, one for another account, or a clock far off)"
		authz = " (the credential may not do this here: an Entra ID identity needs the Storage Blob Data Contributor role on the container; a SAS token needs the read, create, write and delete permissions on it)"
	)
	switch code := bloberror.Code(re.ErrorCode); {
	case code == bloberror.ContainerNotFound:
		msg += " (create the container first: pbicopy does not create containers)"
	case re.StatusCode == 403 && text == "":
		// The answer to a HEAD request has no body to tell which.
		msg += " (the credential was refused, or lacks a permission: an Entra ID identity needs the Storage Blob Data Contributor role on the container; a SAS token needs the read, create, write and delete permissions on it)"
	case code == bloberror.AuthenticationFailed, strings.Contains(text, "failed to authenticate"):
		msg += authn
	case code == bloberror.AuthorizationPermissionMismatch, code == bloberror.AuthorizationFailure, code == bloberror.AuthorizationResourceTypeMismatch:
		msg += authz
	}
	return &messageError{msg: msg, err: err}
}

// azureMessage returns the first line of the <Message> of an Azure Storage
// error response, and its request id.
func azureMessage(re *azcore.ResponseError) string {
	if re.RawResponse == nil || re.RawResponse.Body == nil {
		return ""
	}
	body, err := runtime.Payload(re.RawResponse) // read once, and kept by azcore
	if err != nil {
		return ""
	}
	m := messageRE.FindSubmatch(body)
	if m == nil {
		return ""
	}
	first, rest, _ := strings.Cut(strings.TrimSpace(string(m[1])), "\n")
	if id := requestIDRE.FindStringSubmatch(rest); id != nil {
		return strings.TrimSpace(first) + " (RequestId " + id[1] + ")"
	}
	return strings.TrimSpace(first)
}

var (
	sigRE       = regexp.MustCompile(`(?i)(\bsig=)[^&\s"'<>;]+`)
	messageRE   = regexp.MustCompile(`(?s)<Message>(.*?)</Message>`)
	requestIDRE = regexp.MustCompile(`RequestId:(\S+)`)
)
