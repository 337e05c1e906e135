package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pbicopy/pbicopy/internal/fakepbi"
	"github.com/pbicopy/pbicopy/internal/sinktest"
	"github.com/pbicopy/pbicopy/jobfile"
	"github.com/pbicopy/pbicopy/mapping"
	"github.com/pbicopy/pbicopy/sink"
	"github.com/pbicopy/pbicopy/sink/azureblob"
)

// writeDemoResponse saves the fake's answer to EVALUATE Sales and returns
// its path.
func writeDemoResponse(t *testing.T, dir string) string {
	t.Helper()
	var buf bytes.Buffer
	if err := fakepbi.WriteResponse(&buf, fakepbi.DemoModel(), "EVALUATE Sales", false, fakepbi.Options{}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "response.json")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// blobFixture is a fake Power BI and a container of the shared Azurite,
// reached through AZURE_STORAGE_CONNECTION_STRING.
type blobFixture struct {
	*fixture
	az *sinktest.Azurite
	cc *container.Client
}

func newBlobFixture(t *testing.T, opts fakepbi.Options) *blobFixture {
	t.Helper()
	bf := newBlobFixtureAlone(t, opts)
	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", bf.az.ConnectionString)
	t.Setenv("AZURE_STORAGE_ACCOUNT", "")
	return bf
}

// newBlobFixtureAlone is a blob fixture that leaves the environment alone,
// for tests that run in parallel: its jobs name the connection string,
// ${AZ_CS}, in their storage block.
func newBlobFixtureAlone(t *testing.T, opts fakepbi.Options) *blobFixture {
	t.Helper()
	az := sinktest.StartAzurite(t)
	cc := sinktest.NewContainer(t, az)
	f := newFixture(t, opts)
	f.env["CONTAINER"] = sinktest.ContainerName(cc)
	f.env["AZ_CS"] = az.ConnectionString
	return &blobFixture{fixture: f, az: az, cc: cc}
}

// job builds a job querying the fake, with the given storage block (YAML,
// may be empty) and sinks.
func (f *blobFixture) job(t *testing.T, query, mappingYAML, storage, sinks string) *jobfile.Job {
	t.Helper()
	text := fmt.Sprintf(`name: blob-job
%s%s
%s
sinks:
%s`, fakeSource(queryLine(query), fakeAuth), mappingYAML, storage, sinks)
	job, _, err := jobfile.Loader{LookupEnv: f.lookup}.Load("blob.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return job
}

// readBack downloads a Parquet or CSV blob and returns its rows.
func (f *blobFixture) readBack(t *testing.T, name string, cols []mapping.Column) [][]any {
	t.Helper()
	path := sinktest.DownloadToFile(t, f.cc, name)
	if strings.HasSuffix(name, ".csv") {
		recs, err := sinktest.ReadCSV(path)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := sinktest.CSVRows(recs, mapping.Schema(cols))
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}
	_, rows, err := sinktest.ReadParquetArrow(path, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	xrows, err := sinktest.ReadParquetXitongsys(path)
	if err != nil {
		t.Fatal(err)
	}
	if d := sinktest.DiffRows(rows, xrows); d != "" {
		t.Errorf("%s: xitongsys disagrees with arrow: %s", name, d)
	}
	return rows
}

// TestBlobRunIntegration runs a job from the fake Power BI into Parquet and
// CSV blobs, and reads them back value for value.
func TestBlobRunIntegration(t *testing.T) {
	f := newBlobFixture(t, fakepbi.Options{})
	sinktest.PutBlob(t, f.cc, "sales/out.parquet", []byte("previous"))
	job := f.job(t, "EVALUATE Sales ORDER BY Sales[OrderID] ASC", salesMapping, "storage: { blockSize: 65536, concurrency: 2 }",
		"  - parquet: { path: 'az://${CONTAINER}/sales/out.parquet', compression: zstd }\n  - csv: { path: 'az://${CONTAINER}/sales/out.csv', overwrite: false }\n")
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	res := f.runner(mem).Run(context.Background(), job)
	if res.Err() != nil {
		t.Fatalf("run: %v\nlogs:\n%s", res.Err(), f.logs)
	}
	mem.AssertSize(t, 0)
	cols := mustColumns(t, job)
	tb := table(t, f.opts.Tables, "Sales")
	want := expectedRows(t, tb, cols)
	for i, name := range []string{"sales/out.parquet", "sales/out.csv"} {
		if d := sinktest.DiffRows(want, f.readBack(t, name, cols)); d != "" {
			t.Errorf("%s: %s", name, d)
		}
		info, _ := sinktest.ReadBlob(t, f.cc, name)
		sum := sha256.Sum256(info.Data)
		if info.Metadata[azureblob.MetaSHA256] != hex.EncodeToString(sum[:]) || info.Metadata[azureblob.MetaRows] != fmt.Sprint(tb.Rows) || info.Metadata[azureblob.MetaJob] != "blob-job" {
			t.Errorf("%s: metadata %v", name, info.Metadata)
		}
		sr := res.Sinks[i]
		if sr.Status != Succeeded || sr.Rows != int64(tb.Rows) || sr.Bytes != int64(len(info.Data)) || sr.Location != f.az.Endpoint+"/"+f.env["CONTAINER"]+"/"+name {
			t.Errorf("result %+v", sr)
		}
	}
	if !strings.Contains(f.logs.String(), "published") {
		t.Errorf("logs:\n%s", f.logs)
	}

	// A second run: the CSV sink does not overwrite.
	res = f.runner(nil).Run(context.Background(), job)
	t.Logf("second run: %v", res.Err())
	if res.Err() == nil || !errors.Is(res.Err(), sink.ErrExists) || !strings.Contains(res.Err().Error(), "sales/out.csv") || !strings.Contains(res.Err().Error(), "overwrite is false") {
		t.Errorf("second run: %v", res.Err())
	}
}

// TestBlobRunSplitIntegration splits the output into parts and checks the
// manifest against them, then re-runs with bigger parts.
func TestBlobRunSplitIntegration(t *testing.T) {
	f := newBlobFixture(t, fakepbi.Options{})
	cols := []mapping.Column(nil)
	tb := table(t, f.opts.Tables, "Sales")
	for _, perPart := range []int{tb.Rows/3 + 1, tb.Rows / 2} {
		job := f.job(t, "EVALUATE Sales ORDER BY Sales[OrderID] ASC", salesMapping, "",
			fmt.Sprintf("  - parquet: { path: 'az://${CONTAINER}/sales/date={{ .day }}/part-{{ .part }}.parquet', maxRowsPerFile: %d }\n", perPart))
		cols = mustColumns(t, job)
		r := f.runner(nil)
		r.Params = map[string]string{"day": "2024-03-01"}
		res := r.Run(context.Background(), job)
		if res.Err() != nil {
			t.Fatalf("run: %v\nlogs:\n%s", res.Err(), f.logs)
		}
		info, ok := sinktest.ReadBlob(t, f.cc, "sales/date=2024-03-01/"+sink.ManifestName)
		if !ok {
			t.Fatal("no manifest")
		}
		var m sink.Manifest
		if err := json.Unmarshal(info.Data, &m); err != nil {
			t.Fatal(err)
		}
		wantParts := (tb.Rows + perPart - 1) / perPart
		if len(m.Parts) != wantParts || m.Rows != int64(tb.Rows) || m.Job != "blob-job" || m.Format != "parquet" {
			t.Fatalf("manifest: %s", info.Data)
		}
		var got [][]any
		for i, p := range m.Parts {
			name := "sales/date=2024-03-01/" + p.Path
			if p.Path != fmt.Sprintf("part-%05d-g%d.parquet", i, m.Generation) {
				t.Errorf("part %d is %s", i, p.Path)
			}
			pi, ok := sinktest.ReadBlob(t, f.cc, name)
			if !ok {
				t.Fatalf("no part %s", name)
			}
			sum := sha256.Sum256(pi.Data)
			if p.SHA256 != hex.EncodeToString(sum[:]) || p.Bytes != int64(len(pi.Data)) || pi.Metadata[azureblob.MetaRows] != fmt.Sprint(p.Rows) {
				t.Errorf("part %s: manifest %+v, blob %d bytes, metadata %v", p.Path, p, len(pi.Data), pi.Metadata)
			}
			got = append(got, f.readBack(t, name, cols)...)
		}
		if d := sinktest.DiffRows(expectedRows(t, tb, cols), got); d != "" {
			t.Error(d)
		}
		var names []string
		for _, n := range sinktest.ListBlobs(t, f.cc) {
			names = append(names, strings.TrimPrefix(n, "sales/date=2024-03-01/"))
		}
		if len(names) != wantParts+1 {
			t.Errorf("blobs %q: want %d parts and the manifest (the previous run's extra parts removed)", names, wantParts)
		}
	}
}

// TestBlobRunCancelledIntegration cancels a run while blocks are being
// uploaded: the previous blob keeps its content and block list, and no new
// blob appears.
func TestBlobRunCancelledIntegration(t *testing.T) {
	f := newBlobFixture(t, fakepbi.Options{Tables: []*fakepbi.Table{fakepbi.BenchTable(400_000)}, MaxRows: -1, MaxValues: -1, MaxBytes: -1})
	sinktest.PutBlob(t, f.cc, "big/out.csv", []byte("previous csv"))
	before, _ := sinktest.ReadBlob(t, f.cc, "big/out.csv")
	// Declared: an inferred mapping buffers the whole first response,
	// which here passes the service's 15 MB before a block is staged.
	job := f.job(t, "EVALUATE Sales", fakepbi.BenchMapping, "storage: { blockSize: 65536 }",
		"  - csv: { path: 'az://${CONTAINER}/big/out.csv' }\n  - parquet: { path: 'az://${CONTAINER}/big/new.parquet' }\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	staged := make(chan bool, 1)
	go func() {
		// Cancel once blocks of the new content are staged.
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) && ctx.Err() == nil {
			if sinktest.UncommittedBlocks(t, f.cc, "big/out.csv") > 2 {
				staged <- true
				cancel()
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		staged <- false
	}()
	res := f.runner(nil).Run(ctx, job)
	if !<-staged {
		t.Fatalf("no block was staged before the run ended: %v", res.Err())
	}
	if !errors.Is(res.Err(), context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", res.Err())
	}
	after, ok := sinktest.ReadBlob(t, f.cc, "big/out.csv")
	if !ok || string(after.Data) != "previous csv" || strings.Join(after.Blocks, ",") != strings.Join(before.Blocks, ",") {
		t.Errorf("the previous blob changed: %q, blocks %v (before %v)", after.Data, after.Blocks, before.Blocks)
	}
	if names := sinktest.ListBlobs(t, f.cc); len(names) != 1 {
		t.Errorf("blobs after the cancelled run: %q", names)
	}
}

// TestBlobSecretsNeverShownIntegration runs jobs with a SAS token and an
// account key, valid and refused, and looks for the secrets in everything
// a run shows: the error, the logs (debug level), the JSON summary and the
// dry-run plan.
func TestBlobSecretsNeverShownIntegration(t *testing.T) {
	f := newBlobFixture(t, fakepbi.Options{})
	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", "") // the job's credential alone
	cname := f.env["CONTAINER"]
	cred, err := blob.NewSharedKeyCredential(sinktest.AzuriteAccount, sinktest.AzuriteKey)
	if err != nil {
		t.Fatal(err)
	}
	qp, err := sas.BlobSignatureValues{
		Protocol: sas.ProtocolHTTPSandHTTP, ExpiryTime: time.Now().Add(time.Hour), ContainerName: cname,
		Permissions: (&sas.ContainerPermissions{Read: true, Create: true, Write: true, Delete: true}).String(),
	}.SignWithSharedKey(cred)
	if err != nil {
		t.Fatal(err)
	}
	sig := qp.Signature()
	badSig := "ZZZZ" + sig[4:]
	token := qp.Encode()
	badToken := strings.Replace(token, url.QueryEscape(sig), url.QueryEscape(badSig), 1)
	badKey := "QkFES0VZQkFES0VZQkFES0VZQkFES0VZQkFES0VZQkFES0VZQkFES0VZQkFES0VZQkFES0VZQkFES0VZ"
	for _, c := range []struct {
		name    string
		env     map[string]string
		storage string
		ok      bool
		secrets []string
	}{
		{"sas", map[string]string{"SAS": token}, "storage: { endpoint: '" + f.az.Endpoint + "', sasToken: '${SAS}' }", true, []string{sig, url.QueryEscape(sig)}},
		{"bad sas", map[string]string{"SAS": badToken}, "storage: { endpoint: '" + f.az.Endpoint + "', sasToken: '${SAS}' }", false, []string{badSig, url.QueryEscape(badSig)}},
		{"account key", map[string]string{"KEY": sinktest.AzuriteKey}, "storage: { endpoint: '" + f.az.Endpoint + "', accountKey: '${KEY}' }", true, []string{sinktest.AzuriteKey}},
		{"bad key", map[string]string{"KEY": badKey}, "storage: { endpoint: '" + f.az.Endpoint + "', accountKey: '${KEY}' }", false, []string{badKey}},
		{"bad connection string", map[string]string{"CS": strings.Replace(f.az.ConnectionString, sinktest.AzuriteKey, badKey, 1)}, "storage: { connectionString: '${CS}' }", false, []string{badKey}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				f.env[k] = v
			}
			f.logs.Reset()
			name := strings.ReplaceAll(c.name, " ", "-")
			job := f.job(t, "EVALUATE Sales", salesMapping, c.storage,
				fmt.Sprintf("  - parquet: { path: 'az://${CONTAINER}/%s/out.parquet' }\n  - csv: { path: 'az://${CONTAINER}/%s/part-{{ .part }}.csv', maxRowsPerFile: 100 }\n", name, name))
			r := f.runner(nil)
			plan, err := r.Plan(job)
			if err != nil {
				t.Fatal(err)
			}
			res := r.Run(context.Background(), job)
			if c.ok != (res.Err() == nil) {
				t.Fatalf("run: %v\nlogs:\n%s", res.Err(), f.logs)
			}
			summary, err := json.Marshal(res)
			if err != nil {
				t.Fatal(err)
			}
			var outputs []string
			for _, ps := range mustPlanSinks(t, job) {
				outputs = append(outputs, ps.target.Location(), ps.target.Describe(), fmt.Sprint(ps.target))
			}
			shown := map[string]string{
				"logs": f.logs.String(), "summary": string(summary), "plan": fmt.Sprintf("%+v", plan),
				"outputs": strings.Join(outputs, "\n"),
			}
			if res.Err() != nil {
				t.Logf("refused: %v", res.Err())
				shown["error"] = res.Err().Error()
				if !strings.Contains(res.Err().Error(), "HTTP 403") {
					t.Errorf("error: %v", res.Err())
				}
			}
			for where, text := range shown {
				for _, s := range c.secrets {
					if strings.Contains(text, s) {
						t.Errorf("the secret appears in the %s:\n%s", where, text)
					}
				}
			}
			if c.ok {
				if _, ok := sinktest.ReadBlob(t, f.cc, name+"/"+sink.ManifestName); !ok {
					t.Error("no manifest published")
				}
			}
		})
	}
}

// mustPlanSinks renders the sinks of job as a run would.
func mustPlanSinks(t *testing.T, job *jobfile.Job) []plannedSink {
	t.Helper()
	sinks, err := renderPaths(job, jobfile.Partition{})
	if err != nil {
		t.Fatal(err)
	}
	return sinks
}

// TestCheckFileIntegration probes blob outputs as an online check does.
func TestCheckFileIntegration(t *testing.T) {
	f := newBlobFixture(t, fakepbi.Options{})
	sinktest.PutBlob(t, f.cc, "exists.csv", []byte("x"))
	for _, c := range []struct {
		sinks string
		want  string
	}{
		{"  - csv: { path: 'az://${CONTAINER}/new.csv' }\n", "which may read and write there"},
		{"  - csv: { path: 'az://${CONTAINER}/exists.csv' }\n", "the blob exists and will be replaced"},
		{"  - csv: { path: 'az://${CONTAINER}/exists.csv', overwrite: false }\n", "exists and overwrite is false"},
		{"  - csv: { path: 'az://${CONTAINER}/p/x-{{ .part }}.csv', maxRowsPerFile: 10 }\n", "/p/x-00000.csv: reachable with connection string from AZURE_STORAGE_CONNECTION_STRING"},
		{"  - csv: { path: 'az://nosuchcontainer/x.csv' }\n", "ContainerNotFound (create the container first"},
	} {
		job := f.job(t, "EVALUATE Sales", "", "", c.sinks)
		ps := mustPlanSinks(t, job)
		msg, err := ps[0].target.Probe(context.Background(), sink.Env{Storage: azureblob.Storage{}})
		if err != nil {
			msg = "error: " + err.Error()
		}
		if !strings.Contains(msg, c.want) {
			t.Errorf("%s: %s, want %q", c.sinks, msg, c.want)
		}
	}
	for _, n := range sinktest.ListBlobs(t, f.cc) {
		if n != "exists.csv" {
			t.Errorf("the check published %s", n)
		}
	}
}

// TestBlobRunTruncatedIntegration fails a run at the very end of the
// response (the truncation error comes after the rows): neither the single
// blob nor the split output, whose parts were already cut, changes.
func TestBlobRunTruncatedIntegration(t *testing.T) {
	f := newBlobFixture(t, fakepbi.Options{})
	sinks := "  - csv: { path: 'az://${CONTAINER}/one.csv' }\n  - csv: { path: 'az://${CONTAINER}/split/part-{{ .part }}.csv', maxRowsPerFile: 50 }\n"
	job := f.job(t, "EVALUATE Sales", salesMapping, "", sinks)
	if res := f.runner(nil).Run(context.Background(), job); res.Err() != nil {
		t.Fatal(res.Err())
	}
	snapshot := func() map[string]string {
		m := map[string]string{}
		for _, n := range sinktest.ListBlobs(t, f.cc) {
			info, _ := sinktest.ReadBlob(t, f.cc, n)
			m[n] = string(info.Data) + strings.Join(info.Blocks, ",")
		}
		return m
	}
	before := snapshot()
	if len(before) < 4 {
		t.Fatalf("blobs %v", before)
	}

	f.srv.Close()
	trunc := newFixture(t, fakepbi.Options{MaxRows: 250})
	trunc.env["CONTAINER"] = f.env["CONTAINER"]
	tf := &blobFixture{fixture: trunc, az: f.az, cc: f.cc}
	res := tf.runner(nil).Run(context.Background(), tf.job(t, "EVALUATE Sales", salesMapping, "", sinks))
	if res.Err() == nil || !strings.Contains(res.Err().Error(), "More than 250 rows") {
		t.Fatalf("err = %v", res.Err())
	}
	after := snapshot()
	if len(after) != len(before) {
		t.Errorf("%d blobs after the failed run, %d before", len(after), len(before))
	}
	for n, v := range before {
		if after[n] != v {
			t.Errorf("%s changed", n)
		}
	}
}

// TestBackfillStateOnBlobIntegration keeps a backfill's state beside its
// blob outputs, so that a pod that lost its disk can still resume.
func TestBackfillStateOnBlobIntegration(t *testing.T) {
	f := newBlobFixture(t, fakepbi.Options{})
	query := "EVALUATE FILTER(Sales, Sales[OrderDate] = {{ dax .day }})"
	top := "params: { day: { type: date } }\npartition: { param: day, step: 1d }"
	job := f.job(t, query, salesMapping, top, `  - parquet: { path: "az://${CONTAINER}/sales/day={{ .day }}/sales.parquet" }`+"\n")
	r := f.runner(nil)
	r.From, r.To = "2024-05-01", "2024-05-03"
	connector(r).Rate = -1
	if res := r.Run(context.Background(), job); res.Err() != nil {
		t.Fatal(res.Err())
	}
	data, err := os.ReadFile(sinktest.DownloadToFile(t, f.cc, "sales/.pbicopy-state/blob-job.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil || len(st.Partitions) != 3 {
		t.Fatalf("state blob: %v\n%s", err, data)
	}
	before := f.srv.QueryRequests()
	r.To, r.Resume = "2024-05-04", true
	res := r.Run(context.Background(), job)
	if res.Err() != nil {
		t.Fatal(res.Err())
	}
	if got := f.srv.QueryRequests() - before; got != 1 {
		t.Errorf("resumed run made %d requests, want 1 (three partitions were done)", got)
	}
}

// TestBlobSensitivityLabelIntegration: the data's sensitivity label is
// recorded in the metadata of every blob published and in a split output's
// manifest.
func TestBlobSensitivityLabelIntegration(t *testing.T) {
	f := newBlobFixture(t, fakepbi.Options{SensitivityLabel: &fakepbi.Label{ID: "87ba5c36", Name: "Highly Confidential"}})
	job := f.job(t, "EVALUATE Sales ORDER BY Sales[OrderID] ASC", salesMapping, "",
		"  - csv: { path: 'az://${CONTAINER}/label/out.csv' }\n  - parquet: { path: 'az://${CONTAINER}/label/part-{{ .part }}.parquet', maxRowsPerFile: 3 }\n")
	if res := f.runner(nil).Run(context.Background(), job); res.Err() != nil {
		t.Fatalf("run: %v", res.Err())
	}
	info, ok := sinktest.ReadBlob(t, f.cc, "label/"+sink.ManifestName)
	if !ok {
		t.Fatal("no manifest")
	}
	var m sink.Manifest
	if err := json.Unmarshal(info.Data, &m); err != nil {
		t.Fatal(err)
	}
	if m.Metadata["sensitivity_label_id"] != "87ba5c36" || m.Metadata["sensitivity_label_name"] != "Highly Confidential" {
		t.Errorf("manifest: %s", info.Data)
	}
	for _, name := range []string{"label/out.csv", "label/" + sink.ManifestName, "label/" + m.Parts[len(m.Parts)-1].Path} {
		b, ok := sinktest.ReadBlob(t, f.cc, name)
		if !ok || b.Metadata["pbicopy_sensitivity_label_id"] != "87ba5c36" || b.Metadata["pbicopy_sensitivity_label_name"] != "Highly%20Confidential" {
			t.Errorf("%s: metadata %v", name, b.Metadata)
		}
	}
}
