package pipeline

import (
	"context"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/pbicopy/pbicopy/internal/azure"
	"github.com/pbicopy/pbicopy/internal/azure/credential"
)

// credential builds the Entra ID credential an auth block describes.
func (r *Runner) credential(ctx context.Context, a azure.AuthSpec, cloudName, path string) (azcore.TokenCredential, error) {
	return credential.New(ctx, a, cloudName, path, r.HTTPClient)
}
