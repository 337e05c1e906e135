//go:build !unix

package sink

import (
	"os"
	"testing"
)

// currentUmask is 0 where there is no umask.
func currentUmask(*testing.T) os.FileMode { return 0 }
