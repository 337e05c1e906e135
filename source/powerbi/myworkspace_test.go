package powerbi

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/pbicopy/pbicopy/internal/azure"
	"github.com/pbicopy/pbicopy/internal/fakepbi"
	"github.com/pbicopy/pbicopy/source"
)

// fakeAzureCLI puts an az command first on PATH that hands out token, as
// `az account get-access-token -o json` does for a signed-in user, and
// records its arguments.
func fakeAzureCLI(t *testing.T, token string) (argsFile string) {
	t.Helper()
	dir := t.TempDir()
	argsFile = filepath.Join(dir, "args")
	script := fmt.Sprintf("#!/bin/sh\necho \"$@\" >> %q\necho '{\"accessToken\": \"%s\", \"expires_on\": %d, \"tokenType\": \"Bearer\"}'\n",
		argsFile, token, time.Now().Add(time.Hour).Unix())
	if err := os.WriteFile(filepath.Join(dir, "az"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return argsFile
}

// TestMyWorkspace runs both APIs and a refresh against My workspace
// (workspace: me) with a signed-in user's token from the Azure CLI: the
// requests take the paths without groups/{id}. An app identity is refused
// by the job check, and by the service with a hint if it gets that far.
func TestMyWorkspace(t *testing.T) {
	srv := startFake(t, fakepbi.Options{Tables: []*fakepbi.Table{fakepbi.BenchTable(50)}})
	o := srv.Options()
	args := fakeAzureCLI(t, srv.UserToken("ana@contoso.com"))

	for _, api := range []string{source.APIExecuteDaxQueries, source.APIExecuteQueries} {
		pb := &source.PowerBISpec{API: api, Workspace: "me", Dataset: o.DatasetID, Endpoint: srv.URL(), Query: "EVALUATE Sales",
			Auth: azure.AuthSpec{Method: azure.MethodAzureCLI}}
		if err := pb.Validate(); err != nil {
			t.Fatalf("%s: %v", api, err)
		}
		n := len(srv.Queries())
		rows, err := readRows(t, srv, pb)
		if err != nil || rows != 50 {
			t.Fatalf("%s: %d rows, %v", api, rows, err)
		}
		q := srv.Queries()[n]
		if want := "/v1.0/myorg/datasets/" + o.DatasetID + "/" + api; q.Path != want {
			t.Errorf("%s: path %s, want %s", api, q.Path, want)
		}
	}
	if b, err := os.ReadFile(args); err != nil || !strings.Contains(string(b), "account get-access-token") {
		t.Errorf("az was not asked for a token: %q %v", b, err)
	}

	// A refresh in My workspace.
	cred, err := azidentity.NewAzureCLICredential(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, srv, cred)
	srv.NextRefresh(fakepbi.RefreshBehavior{Polls: 1})
	r, err := c.StartRefresh(context.Background(), "", o.DatasetID, RefreshOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := c.WaitRefresh(context.Background(), "", o.DatasetID, r.ID, fastWait); err != nil || st.Outcome != RefreshCompleted {
		t.Fatalf("refresh in My workspace: %+v %v", st, err)
	}

	// A service principal: refused by the check, and by the service.
	sp := &source.PowerBISpec{API: source.APIExecuteQueries, Workspace: "me", Dataset: o.DatasetID, Endpoint: srv.URL(), Query: "EVALUATE Sales", Auth: fakeAuth(srv)}
	sp.Auth.Method = azure.MethodClientSecret
	if err := sp.Validate(); err == nil || !strings.Contains(err.Error(), "workspace: me (My workspace) belongs to a signed-in user, and auth method clientSecret is an app identity") {
		t.Errorf("service principal with workspace me: %v", err)
	}
	_, err = readRows(t, srv, sp)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 403 || !strings.Contains(err.Error(), "has no My workspace") {
		t.Errorf("service principal on the My-workspace path: %v", err)
	}
}

// readRows reads a whole query of pb through the source and counts rows.
func readRows(t *testing.T, srv *fakepbi.Server, pb *source.PowerBISpec) (int, error) {
	t.Helper()
	conn := &Connector{HTTPClient: srv.Client(), Rate: -1, RetryDelay: 10 * time.Millisecond}
	src, err := conn.Open(context.Background(), source.Request{Spec: source.Spec{PowerBI: pb}, Query: pb.Query, Mem: checkedMem(t)})
	if err != nil {
		return 0, err
	}
	r := &recordingRecv{c: newCollector(t)}
	_, err = src.Read(context.Background(), r)
	return int(r.c.rows()), err
}
