package azureblob

import (
	"os"
	"testing"

	"github.com/pbicopy/pbicopy/internal/sinktest"
)

// TestMain stops the Azurite that the blob integration tests share.
func TestMain(m *testing.M) {
	code := m.Run()
	sinktest.StopAzurite()
	os.Exit(code)
}
