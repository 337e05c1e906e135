package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"

	"github.com/pbicopy/pbicopy/internal/fakepbi"
	"github.com/pbicopy/pbicopy/internal/sinktest"
	"github.com/pbicopy/pbicopy/pipeline"
)

func TestMain(m *testing.M) {
	code := m.Run()
	sinktest.StopAzurite()
	os.Exit(code)
}

// dockerBuild returns the go build command of the Dockerfile's build
// stage, with ${VERSION} as given.
func dockerBuild(t *testing.T, version string) []string {
	t.Helper()
	data, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^ARG VERSION=?\s*$`).Match(data) {
		t.Error("the Dockerfile has no ARG VERSION")
	}
	line := regexp.MustCompile(`(?m)^RUN CGO_ENABLED=0 (go build .*)$`).FindSubmatch(data)
	if line == nil {
		t.Fatal("the Dockerfile has no RUN CGO_ENABLED=0 go build line")
	}
	build := string(bytes.ReplaceAll(line[1], []byte("${VERSION}"), []byte(version)))
	if !strings.Contains(build, "-X main.version="+version) {
		t.Errorf("the build does not stamp main.version: %s", build)
	}
	// Split as the shell would: the only quoting is -ldflags="...".
	var args []string
	for _, f := range regexp.MustCompile(`(?:[^\s"]|"[^"]*")+`).FindAllString(build, -1) {
		args = append(args, strings.ReplaceAll(f, `"`, ""))
	}
	return args
}

// buildImageBinary builds pbicopy as the Dockerfile does, with its version
// stamp, into dir, and checks that `pbicopy version` prints the stamp.
func buildImageBinary(t *testing.T, dir string) string {
	t.Helper()
	const stamp = "v9.9.9-deploy-test"
	args := dockerBuild(t, stamp)
	bin := filepath.Join(dir, "pbicopy")
	i := slices.Index(args, "-o")
	if i < 0 || i+1 >= len(args) {
		t.Fatalf("the Dockerfile's build has no -o: %q", args)
	}
	args[i+1] = bin
	// The image's CGO_ENABLED=0 and -trimpath are left out: they only
	// make the binary static and change the file names it holds, and each
	// would compile every package again, into a cache of its own (minutes
	// on a small machine) instead of the one the other tests fill.
	args = slices.DeleteFunc(args, func(a string) bool { return a == "-trimpath" })
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = ".." // the build context: the repository root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%q: %v\n%s", args, err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "pbicopy "+stamp+" ") {
		t.Errorf("pbicopy version: %v\n%s", err, out)
	}
	return bin
}

// fakeJob is the shipped job file pointed at the fake and at Azurite: the
// same query, mapping, paths and state; source.powerbi.endpoint added, and
// a storage block reaching Azurite with its connection string in place of
// the storage account (Azurite has no Entra ID).
func fakeJob(t *testing.T, shipped []byte, endpoint, connString string) []byte {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(shipped, &doc); err != nil {
		t.Fatal(err)
	}
	root := doc.Content[0]
	get := func(m *yaml.Node, key string) *yaml.Node {
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == key {
				return m.Content[i+1]
			}
		}
		t.Fatalf("the shipped job has no %s", key)
		return nil
	}
	pbi := get(get(root, "source"), "powerbi")
	pbi.Content = append(pbi.Content,
		&yaml.Node{Kind: yaml.ScalarNode, Value: "endpoint"}, &yaml.Node{Kind: yaml.ScalarNode, Value: endpoint})
	storage := get(root, "storage")
	storage.Style = 0
	storage.Content = []*yaml.Node{
		{Kind: yaml.ScalarNode, Value: "connectionString"}, {Kind: yaml.ScalarNode, Value: connString},
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// demoRowsByDay counts the rows of the fake's Sales table by order date.
func demoRowsByDay() map[string]int {
	sales := fakepbi.DemoModel()[0]
	n := map[string]int{}
	for i := range sales.Rows {
		n[sales.Value(i, 1).(time.Time).Format(time.DateOnly)]++
	}
	return n
}

// TestIndexedJobRunsAsShippedIntegration runs the Indexed Job's container
// as Kubernetes would: the exact args of the manifest (the mounted job
// folder mapped to a local one), 4 processes at once with
// JOB_COMPLETION_INDEX 0 to 3 and the webhook's workload identity
// variables, of the binary the Dockerfile builds. The fake Power BI holds
// them to the service's limit of 120 requests a minute, over windows of
// 1.5 s (4 requests), so that a manifest whose --rate let the shards
// exceed it together would draw a 429. Together the shards must query
// each partition once (so no 429 and no retry), write each partition's
// blob once with its rows, and record each partition in exactly one
// shard's state on Blob Storage; nothing may be written to the pod's disk.
// A shard restarted with the same args then finds its work done.
func TestIndexedJobRunsAsShippedIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("builds pbicopy and runs 4 shards for about 15 s")
	}
	m := loadManifests(t)
	if len(m.jobs) != 1 {
		t.Fatalf("%d Jobs", len(m.jobs))
	}
	var pod *corev1.PodSpec
	var completions int
	for _, j := range m.jobs {
		pod, completions = &j.Spec.Template.Spec, int(*j.Spec.Completions)
	}
	c := pod.Containers[0]
	jobs := mountedJobs(t, m, pod)
	if len(jobs) != 1 {
		t.Fatalf("the Job runs %d job files, want 1", len(jobs))
	}
	mountPath := c.VolumeMounts[0].MountPath

	az := sinktest.StartAzurite(t)
	dir := t.TempDir()
	bin := buildImageBinary(t, dir)

	const k8sToken = "eyJhbGciOiJSUzI1NiJ9.k8s-projected-service-account-token.signature"
	var shipped struct {
		Source struct {
			PowerBI struct{ Workspace, Dataset string } `yaml:"powerbi"`
		}
		Sinks []map[string]struct{ Path string }
	}
	if err := yaml.Unmarshal(jobs[0].text, &shipped); err != nil {
		t.Fatal(err)
	}
	sa := m.accounts[pod.ServiceAccountName]
	srv, err := fakepbi.Start(fakepbi.Options{
		WorkspaceID: shipped.Source.PowerBI.Workspace, DatasetID: shipped.Source.PowerBI.Dataset,
		TenantID: sa.Annotations["azure.workload.identity/tenant-id"], ClientID: sa.Annotations["azure.workload.identity/client-id"],
		ClientAssertionCheck: func(a string) error {
			if a != k8sToken {
				return fmt.Errorf("not the projected service account token")
			}
			return nil
		},
		RateLimit: 4, RatePer: 1500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	// The container of the sinks' az://<container>/ paths.
	lake := strings.SplitN(strings.TrimPrefix(shipped.Sinks[0]["parquet"].Path, "az://"), "/", 2)[0]
	cont, err := container.NewClientFromConnectionString(az.ConnectionString, lake, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cont.Create(context.Background(), nil); err != nil {
		t.Fatalf("create container %s: %v", lake, err)
	}
	t.Cleanup(func() { _, _ = cont.Delete(context.Background(), nil) })

	jobDir := filepath.Join(dir, "jobs")
	if err := os.MkdirAll(jobDir, 0o755); err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(jobDir, strings.TrimPrefix(jobs[0].path, mountPath+"/"))
	if err := os.WriteFile(local, fakeJob(t, jobs[0].text, srv.URL(), az.ConnectionString), 0o644); err != nil {
		t.Fatal(err)
	}
	args := slices.Clone(c.Args)
	for i, a := range args {
		if a == jobs[0].path {
			args[i] = local
		}
	}
	certFile := filepath.Join(dir, "fake.pem")
	tokenFile := filepath.Join(dir, "azure-identity-token")
	if err := os.WriteFile(certFile, srv.CertificatePEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokenFile, []byte(k8sToken), 0o644); err != nil {
		t.Fatal(err)
	}

	// shard runs one pod's container: a working folder of its own, which
	// stands for the read-only root filesystem and must stay empty.
	shard := func(ctx context.Context, index string) (code int, output string, wrote []string) {
		work := t.TempDir()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Dir = work
		cmd.Env = []string{
			"HOME=" + work, "TMPDIR=" + work, "SSL_CERT_FILE=" + certFile,
			"AZURE_CLIENT_ID=" + srv.Options().ClientID, "AZURE_TENANT_ID=" + srv.Options().TenantID,
			"AZURE_FEDERATED_TOKEN_FILE=" + tokenFile, "AZURE_AUTHORITY_HOST=" + srv.AuthorityHost(),
		}
		for _, e := range c.Env {
			cmd.Env = append(cmd.Env, e.Name+"="+e.Value)
		}
		if index != "" {
			cmd.Env = append(cmd.Env, "JOB_COMPLETION_INDEX="+index)
		}
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("shard %s: %v", index, err)
		}
		entries, _ := os.ReadDir(work)
		for _, e := range entries {
			wrote = append(wrote, e.Name())
		}
		return code, string(out), wrote
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	started := time.Now()
	for i := range completions {
		wg.Go(func() {
			code, out, wrote := shard(ctx, fmt.Sprint(i))
			if code != 0 {
				t.Errorf("shard %d: exit %d\n%s", i, code, out)
			}
			if len(wrote) > 0 {
				t.Errorf("shard %d wrote %v to its local disk", i, wrote)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(started)
	if t.Failed() {
		t.FailNow()
	}

	// Every day of the manifest's range, queried once.
	from, _ := flagValue(args, "--from")
	to, _ := flagValue(args, "--to")
	first, _ := time.Parse(time.DateOnly, from)
	last, _ := time.Parse(time.DateOnly, to)
	var days []string
	for d := first; !d.After(last); d = d.AddDate(0, 0, 1) {
		days = append(days, d.Format(time.DateOnly))
	}
	dateRE := regexp.MustCompile(`DATE\((\d+), (\d+), (\d+)\)`)
	queried := map[string]int{}
	for _, q := range srv.Queries() {
		m := dateRE.FindStringSubmatch(q.Query)
		if m == nil {
			t.Errorf("a query without a date: %s", q.Query)
			continue
		}
		queried[fmt.Sprintf("%s-%02s-%02s", m[1], m[2], m[3])]++
	}
	if n := srv.QueryRequests(); n != len(days) {
		t.Errorf("the fake received %d requests for %d partitions: a 429 or a retry", n, len(days))
	}
	for _, d := range days {
		if queried[d] != 1 {
			t.Errorf("partition %s queried %d times", d, queried[d])
		}
	}

	// Each partition's blob, once, with its rows; each shard's state.
	rows := demoRowsByDay()
	var want []string
	for _, d := range days {
		want = append(want, "sales/day="+d+"/sales.parquet")
	}
	for i := range completions {
		want = append(want, fmt.Sprintf(".pbicopy-state/sales-daily.shard-%d-of-%d.json", i, completions))
	}
	got := sinktest.ListBlobs(t, cont)
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("blobs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, d := range days {
		name := "sales/day=" + d + "/sales.parquet"
		data, err := sinktest.ReadParquetXitongsys(sinktest.DownloadToFile(t, cont, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(data) != rows[d] || rows[d] == 0 {
			t.Errorf("%s: %d rows, the fake has %d", name, len(data), rows[d])
		}
		for _, r := range data {
			if fmt.Sprint(r[1]) != d {
				t.Errorf("%s: a row of %v", name, r[1])
				break
			}
		}
	}
	recorded := map[string][]int{}
	for i := range completions {
		info, _ := sinktest.ReadBlob(t, cont, fmt.Sprintf(".pbicopy-state/sales-daily.shard-%d-of-%d.json", i, completions))
		var st pipeline.State
		if err := json.Unmarshal(info.Data, &st); err != nil {
			t.Fatalf("state of shard %d: %v", i, err)
		}
		for key := range st.Partitions {
			recorded[key] = append(recorded[key], i)
		}
	}
	for k, d := range days {
		if shards := recorded[d]; len(shards) != 1 || shards[0] != k%completions {
			t.Errorf("partition %s (index %d) recorded by shards %v, want [%d]", d, k, shards, k%completions)
		}
	}
	if len(recorded) != len(days) {
		t.Errorf("%d partitions recorded, want %d: %v", len(recorded), len(days), recorded)
	}
	t.Logf("%d shards, %d partitions, %d requests in %s", completions, len(days), srv.QueryRequests(), elapsed.Round(time.Millisecond))

	// A pod started again (a new disk) finds its shard's work on Blob
	// Storage and makes no request; a pod without a usable index runs
	// nothing and exits 2, which the podFailurePolicy makes fatal.
	before := srv.QueryRequests()
	if code, out, _ := shard(ctx, "1"); code != 0 {
		t.Errorf("shard 1 again: exit %d\n%s", code, out)
	}
	for _, index := range []string{"", "4", "x"} {
		if code, out, _ := shard(ctx, index); code != 2 || !strings.Contains(out, "JOB_COMPLETION_INDEX") {
			t.Errorf("JOB_COMPLETION_INDEX=%q: exit %d, want 2\n%s", index, code, out)
		}
	}
	if n := srv.QueryRequests() - before; n != 0 {
		t.Errorf("%d requests after the backfill was done", n)
	}
}
