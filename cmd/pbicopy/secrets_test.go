package main

import (
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/pbicopy/pbicopy/internal/fakepbi"
	"github.com/pbicopy/pbicopy/internal/sinktest"
)

// TestSecretsNeverWrittenIntegration runs the command with a known client
// secret, SAS token, storage account key and PostgreSQL password, at debug
// level, through successes and failures at each phase, and scans
// everything it wrote for each of them: stdout, stderr, the summary, the
// state, the manifests, the data files, the blobs, the metrics it pushed.
func TestSecretsNeverWrittenIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("it runs the failure matrix's runs as child processes (about 15 s)")
	}
	const (
		clientSecret = "Cl1ent-S3cret-pbicopy-7f3a9"
		wrongSecret  = "Wr0ng-S3cret-pbicopy-91c2e"
		pgPassword   = "Pg-Pa55word-pbicopy-x9q"
	)
	db := sinktest.OpenPG(t) // its own schema, dropped at the end
	schema := db.Schema

	az := sinktest.StartAzurite(t)
	cc := sinktest.NewContainer(t, az)
	cname := sinktest.ContainerName(cc)
	cred, err := blob.NewSharedKeyCredential(sinktest.AzuriteAccount, sinktest.AzuriteKey)
	if err != nil {
		t.Fatal(err)
	}
	qp, err := sas.BlobSignatureValues{
		Protocol: sas.ProtocolHTTPSandHTTP, ExpiryTime: time.Now().Add(time.Hour), ContainerName: cname,
		Permissions: (&sas.ContainerPermissions{Read: true, Create: true, Write: true, Delete: true, List: true}).String(),
	}.SignWithSharedKey(cred)
	if err != nil {
		t.Fatal(err)
	}

	facts := &fakepbi.Facts{Rows: 900, Days: 2}
	facts.Set(1, fakepbi.NoPoison, -1)
	srv, err := fakepbi.Start(fakepbi.Options{Tables: []*fakepbi.Table{facts.Table()}, ClientSecret: clientSecret})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	certFile := filepath.Join(dir, "fake.pem")
	pg := sinktest.PGDSN() + " password=" + pgPassword
	env := childEnv(t, srv, dir, "T_PG="+pg, "T_SAS="+qp.Encode(), "T_KEY="+sinktest.AzuriteKey)
	jobs := filepath.Join(dir, "jobs")
	if err := os.MkdirAll(jobs, 0o755); err != nil {
		t.Fatal(err)
	}
	head := `params:
  day: { type: date }
partition: { param: day, step: 1d }
source:
  powerbi:
    workspace: ${T_WS}
    dataset: ${T_DS}
    endpoint: ${T_EP}
    query: "EVALUATE FILTER(Facts, Facts[Day] = {{ dax .day }})"
    auth: { tenant: "${T_TENANT}", clientId: "${T_CLIENT}", clientSecret: "${T_SECRET}", authorityHost: "${T_AUTH}" }
` + fakepbi.FactsMapping
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(jobs, name+".yaml"), []byte("name: "+name+"\n"+head+body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a-sas", fmt.Sprintf(`storage: { endpoint: %q, sasToken: "${T_SAS}" }
sinks:
  - parquet: { path: %q, maxRowsPerFile: 200 }
  - csv: { path: "az://%s/a/{{ .day }}.csv" }
  - postgres: { dsn: "${T_PG}", table: %s.a, mode: replacePartition, partitionColumn: day }
`, az.Endpoint, filepath.Join(out, "a", "{{ .day }}", "part-{{ .part }}.parquet"), cname, schema))
	write("b-key", fmt.Sprintf(`storage: { endpoint: %q, accountKey: "${T_KEY}" }
sinks:
  - parquet: { path: "az://%s/b/{{ .day }}/data.parquet" }
  - csv: { path: %q }
  - postgres: { dsn: "${T_PG}", table: %s.b, mode: merge, key: [id] }
`, az.Endpoint, cname, filepath.Join(out, "b", "{{ .day }}.csv"), schema))

	gw := newFakeGateway(t, 0)
	w := &failWorld{env: env}
	var written []string // everything the runs printed
	runs := []struct {
		name string
		env  []string
		args []string
	}{
		{"validate online", nil, []string{"validate", "--online", "-v", jobs}},
		{"plan", nil, []string{"plan", jobs, "--from", "2024-01-01", "--to", "2024-01-02"}},
		{"run", nil, nil},
		{"run, text logs", nil, []string{"--log-format", "text"}},
		{"wrong client secret", []string{"T_SECRET=" + wrongSecret}, nil},
		{"PostgreSQL refuses a value", nil, nil}, // see below: a NUL
	}
	for i := range 3 {
		for _, at := range []string{"open", "write1", "commit"} {
			runs = append(runs, struct {
				name string
				env  []string
				args []string
			}{fmt.Sprintf("sink %d fails at %s", i, at), []string{fmt.Sprintf("PBICOPY_TEST_FAULT=%s:%d", at, i)}, nil})
		}
	}
	for n, r := range runs {
		args := r.args
		if args == nil || args[0] == "--log-format" {
			summary := filepath.Join(dir, fmt.Sprintf("summary-%d.json", n))
			args = append([]string{"run", jobs, "--from", "2024-01-01", "--to", "2024-01-02", "-v", "--log-format", "json",
				"--summary", summary, "--metrics-push", gw.URL}, args...)
		}
		facts.Set(n+2, fakepbi.NoPoison, -1)
		if r.name == "PostgreSQL refuses a value" {
			facts.Set(n+2, fakepbi.NUL, 5)
		}
		code, stdout, stderr := w.run(t, r.env, args...)
		if code == 2 || strings.Contains(stderr, "panic:") {
			t.Errorf("%s: exit %d\n%s", r.name, code, stderr)
		}
		written = append(written, r.name+" stdout:\n"+stdout, r.name+" stderr:\n"+stderr)
	}

	// Everything on disk (summaries, state, manifests, data files) and in
	// the container, and every push.
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(p, jobs) || p == certFile {
			return err
		}
		data, err := os.ReadFile(p)
		written = append(written, p+":\n"+string(data))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	blobs := sinktest.ListBlobs(t, cc)
	for _, n := range blobs {
		info, _ := sinktest.ReadBlob(t, cc, n)
		written = append(written, "blob "+n+":\n"+string(info.Data)+fmt.Sprint(info.Metadata))
	}
	pushes := gw.recorded()
	for _, p := range pushes {
		written = append(written, "push "+p.path+":\n"+p.body)
	}
	if len(blobs) == 0 || len(pushes) == 0 {
		t.Fatalf("%d blobs, %d pushes: the runs did not get far enough to show anything", len(blobs), len(pushes))
	}

	sig := qp.Signature()
	for name, secret := range map[string]string{
		"client secret": clientSecret, "wrong client secret": wrongSecret,
		"SAS signature": sig, "SAS signature, URL-encoded": url.QueryEscape(sig), "SAS token": qp.Encode(),
		"account key": sinktest.AzuriteKey, "PostgreSQL password": pgPassword,
	} {
		for _, text := range written {
			if i := strings.Index(text, secret); i >= 0 {
				label, _, _ := strings.Cut(text, "\n")
				t.Errorf("the %s shows in %s: ...%s...", name, label, text[max(i-120, 0):i])
			}
		}
	}
}
