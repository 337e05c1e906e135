package sinktest

import (
	"os"
	"testing"
)

// RequireEnv is the environment variable that turns every integration-test
// skip into a failure. CI sets it, so a green run can never hide a missing
// PostgreSQL server or Azurite.
const RequireEnv = "PBICOPY_REQUIRE_INTEGRATION"

// SkipOrFail skips t with the reason when an integration service is
// unavailable, or fails it when RequireEnv is set to a non-empty value.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv(RequireEnv) != "" {
		t.Fatalf("integration service required (%s is set): "+format, append([]any{RequireEnv}, args...)...)
	}
	t.Skipf("skipping integration test: "+format+" (set %s=1 to make this a failure)", append(args, RequireEnv)...)
}
