package azureblob

import (
	"context"
	"fmt"
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/pbicopy/pbicopy/internal/azure/credential"
	"github.com/pbicopy/pbicopy/sink"
)

// Storage reaches the containers of the accounts that job files name. The
// zero value is usable; it is safe for concurrent use.
type Storage struct {
	// HTTPClient carries the requests, Entra ID's included; nil means
	// azcore's default. The demo and tests use it to trust a fake's
	// certificate.
	HTTPClient *http.Client
}

var _ sink.Storage = Storage{}

// Folder returns the folder of a container under a blob name prefix,
// building the Entra ID credential the account asks for. It makes no
// request to Blob Storage.
func (s Storage) Folder(ctx context.Context, acct sink.BlobAccount, container, prefix string, opts sink.BlobOptions) (sink.Folder, error) {
	var cred azcore.TokenCredential
	if acct.Entra != nil {
		var err error
		if cred, err = credential.New(ctx, *acct.Entra, acct.Cloud, acct.EntraField, s.HTTPClient); err != nil {
			return nil, fmt.Errorf("storage credential: %w", err)
		}
	}
	var transport policy.Transporter
	if s.HTTPClient != nil {
		transport = s.HTTPClient
	}
	c, err := OpenContainer(acct, container, opts, cred, transport)
	if err != nil {
		return nil, err
	}
	return c.Folder(prefix), nil
}
