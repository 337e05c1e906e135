package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pbicopy/pbicopy/internal/azure"

	"github.com/pbicopy/pbicopy/sink"
)

func TestParseOutputPath(t *testing.T) {
	wd, _ := os.Getwd()
	for _, c := range []struct {
		in   string
		want outputPath
		err  string
	}{
		{in: "out/sales.parquet", want: outputPath{local: filepath.Join(wd, "out", "sales.parquet")}},
		{in: "/data/x.csv", want: outputPath{local: filepath.FromSlash("/data/x.csv")}},
		{in: "az://lake/sales/date=2024-01-01/part-{{.part}}.parquet", want: outputPath{blob: true, container: "lake", name: "sales/date=2024-01-01/part-{{.part}}.parquet"}},
		{in: "https://acct.blob.core.windows.net/lake/a/b.csv", want: outputPath{blob: true, container: "lake", name: "a/b.csv", account: "acct", service: "https://acct.blob.core.windows.net/"}},
		{in: "https://acct.blob.core.chinacloudapi.cn/lake/b.csv", want: outputPath{blob: true, container: "lake", name: "b.csv", account: "acct", service: "https://acct.blob.core.chinacloudapi.cn/"}},
		{in: "az://", err: "no container"},
		{in: "az:///x.parquet", err: "no container"},
		{in: "az://lake", err: "no blob path after the container"},
		{in: "az://lake/", err: "no blob path after the container"},
		{in: "az://Lake/x", err: "not a container name"},
		{in: "az://la--ke/x", err: "not a container name"},
		{in: "az://lake//x", err: "empty segment"},
		{in: "az://lake/a/../x", err: `".."`},
		{in: "az://lake/a/./x", err: `"."`},
		{in: "az://lake/dir/", err: "empty segment"},
		{in: "az://{{.part}}x/y", err: "not in the container"},
		{in: "https://acct.blob.core.windows.net/lake/x?sv=1&sig=SECRETSIG", err: "never in the path"},
		{in: "https://example.com/lake/x", err: "not a Blob service host"},
		{in: "http://acct.blob.core.windows.net/lake/x", err: "use https"},
		{in: "s3://bucket/x", err: "unknown scheme s3://"},
	} {
		got, err := parseOutputPath(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want %q", c.in, err, c.err)
			}
			if err != nil && strings.Contains(err.Error(), "SECRETSIG") {
				t.Errorf("%q: the error shows the signature: %v", c.in, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q: %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}

// TestRenderOutputEscapes renders path templates with values that try to
// leave the folder the template names.
func TestRenderOutputEscapes(t *testing.T) {
	for _, c := range []struct {
		tmpl  string
		value string
		err   string
	}{
		{"out/day={{ .v }}/sales.parquet", "2024-01-01", ""},
		{"out/{{ .v }}/sales.parquet", "2024/01/01", ""},
		{"../shared/{{ .v }}.csv", "x", ""},         // the static part may go up
		{"{{ .v }}/sales.parquet", "/srv/data", ""}, // the value gives the folder
		{"out/{{ .v }}/sales.parquet", "..", `".." segment`},
		{"out/{{ .v }}/sales.parquet", "../../etc", `".." segment`},
		{"out/{{ .v }}/sales.parquet", "a/../..", `".." segment`},
		{"out/{{ .v }}/sales.parquet", ".", `"." segment`},
		{"out/{{ .v }}sales.parquet", "/", "empty segment"},
		{"out/{{ .v }}/sales.parquet", "", "empty segment"},
		{"out/x{{ .v }}", "/", "empty segment"},
		{"az://lake/sales/{{ .v }}/x.parquet", "../../other", `".."`},
		{"az://lake/sales/{{ .v }}/x.parquet", "/abs", "empty segment"},
		{"az://lake/{{ .v }}", "", "no blob path"},
		{"az://{{ .v }}/x.parquet", "lake", ""},
		{"az://{{ .v }}/x.parquet", "../lake", "not a container name"},
		{"{{ .v }}", "", "renders empty"},
	} {
		_, err := renderOutput(c.tmpl, map[string]any{"v": c.value})
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s with %q: %v", c.tmpl, c.value, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s with %q: error %v, want %q", c.tmpl, c.value, err, c.err)
		}
	}
}

func TestPlanFileSplit(t *testing.T) {
	t.Setenv(envConnectionString, "UseDevelopmentStorage=true")
	t.Setenv(envAccount, "")
	job := &Job{Name: "j", Source: SourceSpec{File: "r.json"}}
	tr := true
	for _, c := range []struct {
		spec                   SinkSpec
		tmpl                   string
		dir, prefix, name, loc string
	}{
		{SinkSpec{Parquet: &sink.ParquetOptions{MaxRowsPerFile: 10}}, "/data/sales/part-{{ .part }}.parquet",
			filepath.FromSlash("/data/sales/"), "", "part-{{.part}}.parquet", filepath.FromSlash("/data/sales/part-{{.part}}.parquet")},
		{SinkSpec{CSV: &sink.CSVOptions{MaxBytesPerFile: 1 << 20}}, "/data/sales/p={{ .part }}/x.csv",
			filepath.FromSlash("/data/sales/"), "", "p={{.part}}/x.csv", filepath.FromSlash("/data/sales/p={{.part}}/x.csv")},
		{SinkSpec{CSV: &sink.CSVOptions{Overwrite: &tr}}, "/data/x.csv", filepath.FromSlash("/data/"), "", "x.csv", filepath.FromSlash("/data/x.csv")},
		{SinkSpec{Parquet: &sink.ParquetOptions{MaxRowsPerFile: 10}}, "az://lake/sales/date={{ .day }}/part-{{ .part }}.parquet",
			"", "sales/date=2024-03-01/", "part-{{.part}}.parquet", "http://127.0.0.1:10000/devstoreaccount1/lake/sales/date=2024-03-01/part-{{.part}}.parquet"},
		{SinkSpec{Parquet: &sink.ParquetOptions{}}, "az://lake/x.parquet", "", "", "x.parquet", "http://127.0.0.1:10000/devstoreaccount1/lake/x.parquet"},
	} {
		if runtime.GOOS == "windows" && strings.HasPrefix(c.tmpl, "/") {
			continue
		}
		ft, err := planFile(job, c.spec, c.tmpl, map[string]any{"day": "2024-03-01"})
		if err != nil {
			t.Errorf("%s: %v", c.tmpl, err)
			continue
		}
		if ft.dir != c.dir || ft.prefix != c.prefix || ft.name != c.name || ft.location != c.loc {
			t.Errorf("%s: dir %q prefix %q name %q location %q; want %q %q %q %q", c.tmpl, ft.dir, ft.prefix, ft.name, ft.location, c.dir, c.prefix, c.name, c.loc)
		}
	}
	if _, err := planFile(job, SinkSpec{CSV: &sink.CSVOptions{MaxRowsPerFile: 5}}, "/x.csv", nil); err == nil || !strings.Contains(err.Error(), "must contain {{ .part }}") {
		t.Errorf("split without {{ .part }}: %v", err)
	}
	if _, err := planFile(job, SinkSpec{CSV: &sink.CSVOptions{}}, "/x-{{ .part }}.csv", nil); err == nil || !strings.Contains(err.Error(), "set maxRowsPerFile") {
		t.Errorf("{{ .part }} without a split: %v", err)
	}
}

// TestResolveAccount checks the endpoint and the credential chosen from the
// job's storage block and the environment.
func TestResolveAccount(t *testing.T) {
	const cs = "DefaultEndpointsProtocol=https;AccountName=envacct;AccountKey=a2V5;EndpointSuffix=core.windows.net"
	pbi := SourceSpec{PowerBI: &PowerBISpec{Cloud: "usgov", Auth: azure.AuthSpec{Tenant: "t", ClientID: "c", ClientSecret: "s"}}}
	for _, c := range []struct {
		name     string
		env      string
		envAcct  string
		src      SourceSpec
		st       *StorageSpec
		path     string
		endpoint string
		method   string
		err      string
	}{
		{name: "env connection string", env: cs, path: "az://lake/x", endpoint: "https://envacct.blob.core.windows.net/", method: "connection string from AZURE_STORAGE_CONNECTION_STRING"},
		{name: "account and entra", st: &StorageSpec{Account: "lake1"}, src: pbi, path: "az://lake/x", endpoint: "https://lake1.blob.core.usgovcloudapi.net/", method: "Entra ID from source.powerbi.auth"},
		{name: "env account", envAcct: "acct2", src: pbi, path: "az://lake/x", endpoint: "https://acct2.blob.core.usgovcloudapi.net/", method: "Entra ID from source.powerbi.auth"},
		{name: "env conn for another account", env: cs, st: &StorageSpec{Account: "other"}, src: pbi, path: "az://lake/x", endpoint: "https://other.blob.core.usgovcloudapi.net/", method: "Entra ID from source.powerbi.auth"},
		{name: "url and env conn", env: cs, path: "https://envacct.blob.core.windows.net/lake/x", endpoint: "https://envacct.blob.core.windows.net/", method: "connection string from AZURE_STORAGE_CONNECTION_STRING"},
		{name: "sas beats env", env: cs, st: &StorageSpec{Account: "acct3", SASToken: "sv=1&sig=x"}, path: "az://lake/x", endpoint: "https://acct3.blob.core.windows.net/", method: "SAS token from storage.sasToken"},
		{name: "key with endpoint", st: &StorageSpec{Endpoint: "http://127.0.0.1:10000/devstoreaccount1", AccountKey: "a2V5"}, path: "az://lake/x", endpoint: "http://127.0.0.1:10000/devstoreaccount1/", method: "account key from storage.accountKey"},
		{name: "separate storage auth", st: &StorageSpec{Account: "acct4", Auth: &azure.AuthSpec{Method: "managedIdentity"}}, src: pbi, path: "az://lake/x", endpoint: "https://acct4.blob.core.usgovcloudapi.net/", method: "Entra ID from storage.auth"},
		{name: "file source", st: &StorageSpec{Account: "acct5"}, src: SourceSpec{File: "r.json"}, path: "az://lake/x", endpoint: "https://acct5.blob.core.windows.net/", method: "Entra ID from the environment (DefaultAzureCredential)"},
		{name: "no account", src: pbi, path: "az://lake/x", err: "no storage account for az://lake/x"},
		{name: "job conn for another account", st: &StorageSpec{ConnectionString: cs}, path: "https://other.blob.core.windows.net/lake/x", err: "the connection string reaches https://envacct.blob.core.windows.net/, not https://other.blob.core.windows.net/"},
		{name: "endpoint against url", st: &StorageSpec{Endpoint: "https://a.blob.core.windows.net"}, path: "https://b.blob.core.windows.net/lake/x", err: "give one of them"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(envConnectionString, c.env)
			t.Setenv(envAccount, c.envAcct)
			job := &Job{Name: "j", Source: c.src, Storage: c.st}
			if job.Source.PowerBI == nil && job.Source.File == "" {
				job.Source.File = "r.json"
			}
			ft, err := planFile(job, SinkSpec{CSV: &sink.CSVOptions{}}, c.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if c.err != "" {
				if ft.planErr == nil || !strings.Contains(ft.planErr.Error(), c.err) {
					t.Errorf("error %v, want %q", ft.planErr, c.err)
				}
				if _, err := (&Runner{}).openFile(context.Background(), ft, nil); err == nil || err.Error() != ft.planErr.Error() {
					t.Errorf("open: %v", err)
				}
				return
			}
			if ft.planErr != nil {
				t.Fatal(ft.planErr)
			}
			ep, err := ft.acct.Endpoint()
			if err != nil || ep != c.endpoint || ft.method != c.method {
				t.Errorf("endpoint %q (%v), method %q; want %q, %q", ep, err, ft.method, c.endpoint, c.method)
			}
			if !strings.HasPrefix(ft.location, c.endpoint+"lake/") {
				t.Errorf("location %q", ft.location)
			}
			if strings.Contains(ft.describe(), "a2V5") || strings.Contains(fmt.Sprint(ft), "a2V5") {
				t.Errorf("the description shows the key: %s", ft.describe())
			}
		})
	}
}

// TestValidateStorage checks the problems the loader reports for storage
// blocks and blob paths, with their lines.
func TestValidateStorage(t *testing.T) {
	env := map[string]string{"SAS": "sv=2024&sig=abc", "KEY": "a2V5", "CS": "AccountName=a;AccountKey=a2V5"}
	lookup := func(n string) (string, bool) { v, ok := env[n]; return v, ok }
	base := "name: j\nsource: { file: r.json }\n"
	for _, c := range []struct {
		name string
		text string
		want []string
	}{
		{"valid", base + "storage: { account: lake1, sasToken: '${SAS}', blockSize: 16777216, concurrency: 8 }\nsinks:\n  - parquet: { path: 'az://lake/sales/part-{{ .part }}.parquet', maxRowsPerFile: 1000000 }\n  - csv: { path: 'az://lake/sales/x.csv', overwrite: false }\n", nil},
		{"two credentials", base + "storage:\n  sasToken: ${SAS}\n  accountKey: ${KEY}\nsinks: [ { csv: { path: az://lake/x.csv } } ]\n",
			[]string{"j.yaml:3: storage: give one credential, not sasToken and accountKey"}},
		{"bad values", base + "storage:\n  account: My_Account\n  endpoint: ftp://x\n  cloud: mars\n  sasToken: nosig\n  blockSize: 1000\n  concurrency: 100\nsinks: [ { csv: { path: az://lake/x.csv } } ]\n",
			[]string{
				"j.yaml:4: storage.account: \"My_Account\" is not a storage account name",
				"j.yaml:5: storage.endpoint: not a Blob service URL",
				"j.yaml:6: storage.cloud: unknown cloud \"mars\"",
				"j.yaml:7: storage.sasToken: not a SAS token",
				"j.yaml:8: storage.blockSize: 1000 is out of range",
				"j.yaml:9: storage.concurrency: 100 is out of range",
			}},
		{"literal secret", base + "storage:\n  accountKey: a2V5\nsinks: [ { csv: { path: az://lake/x.csv } } ]\n", nil},
		{"split without part", base + "sinks:\n  - parquet: { path: az://lake/x.parquet, maxRowsPerFile: 10 }\n",
			[]string{"j.yaml:4: sinks[0].parquet.path: maxRowsPerFile or maxBytesPerFile splits the output into parts: the path must contain {{ .part }}"}},
		{"part without split", base + "sinks:\n  - csv: { path: 'out/x-{{ .part }}.csv' }\n",
			[]string{"j.yaml:4: sinks[0].csv.path: {{ .part }} numbers the parts of a split output"}},
		{"escaping paths", base + "sinks:\n  - csv: { path: 'az://lake/../x.csv' }\n  - csv: { path: 'az://lake//x.csv' }\n  - csv: { path: 'az://Lake/x.csv' }\n  - parquet: { path: 'az://lake' }\n  - parquet: { path: 'out/{{ .day }}//x.parquet' }\n",
			[]string{
				`j.yaml:4: sinks[0].csv.path: the blob name has a ".." segment`,
				"j.yaml:5: sinks[1].csv.path: the blob name starts with /",
				`j.yaml:6: sinks[2].csv.path: "Lake" is not a container name`,
				"j.yaml:7: sinks[3].parquet.path: no blob path after the container",
				"j.yaml:8: sinks[4].parquet.path: the templated part of \"out/x//x.parquet\" has an empty segment",
			}},
		{"manifests collide", base + "sinks:\n  - parquet: { path: 'az://lake/s/a-{{ .part }}.parquet', maxRowsPerFile: 10 }\n  - csv: { path: 'az://lake/s/b-{{ .part }}.csv', maxRowsPerFile: 10 }\n",
			[]string{"j.yaml:5: sinks[1].csv.path: sinks[0].parquet writes its parts' _manifest.json in the same folder"}},
		{"negative limits", base + "sinks:\n  - csv: { path: 'x-{{ .part }}.csv', maxRowsPerFile: -1, maxBytesPerFile: 10 }\n",
			[]string{"j.yaml:4: sinks[0].csv: maxRowsPerFile: -1 is negative", "maxBytesPerFile: 10 is out of range"}},
		{"storage auth", base + "storage:\n  account: lake1\n  auth: { method: nope }\nsinks: [ { csv: { path: az://lake/x.csv } } ]\n",
			[]string{"j.yaml:5: storage.auth.method: \"nope\" is not a method"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, warns, err := Loader{LookupEnv: lookup}.Load("j.yaml", []byte(c.text))
			var got string
			if err != nil {
				got = err.Error()
			}
			if c.want == nil && err != nil {
				t.Fatalf("unexpected problems:\n%s", got)
			}
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Errorf("problems lack %q:\n%s", w, got)
				}
			}
			if c.name == "literal secret" && (len(warns) != 1 || !strings.Contains(warns[0].String(), "storage.accountKey: the secret is written in the job file")) {
				t.Errorf("warnings %v", warns)
			}
			if strings.Contains(got, "abc") || strings.Contains(got, "a2V5") {
				t.Errorf("a secret is quoted: %s", got)
			}
		})
	}
}

// TestLocalSplitRun runs a job whose local output is split into parts and
// checks the manifest against the parts.
func TestLocalSplitRun(t *testing.T) {
	dir := t.TempDir()
	resp := writeDemoResponse(t, dir)
	text := fmt.Sprintf("name: split-job\nsource: { file: %q }\n%s\nsinks:\n  - csv: { path: %q, maxRowsPerFile: 300 }\n",
		resp, salesMapping, filepath.Join(dir, "out", "part-{{ .part }}.csv"))
	job, _, err := Loader{}.Load("split.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	res := (&Runner{BatchRows: 128}).Run(context.Background(), job)
	if res.Err() != nil {
		t.Fatal(res.Err())
	}
	data, err := os.ReadFile(filepath.Join(dir, "out", sink.ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	var m sink.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if m.Job != "split-job" || m.Format != "csv" || m.Rows != res.Rows || len(m.Parts) < 2 || m.Parts[0].Path != "part-00000.csv" || m.Parts[0].Rows != 300 {
		t.Errorf("manifest %s", data)
	}
	if len(res.Sinks) != 1 || res.Sinks[0].Location != filepath.Join(dir, "out", sink.ManifestName) || len(res.Sinks[0].Files) != len(m.Parts) {
		t.Errorf("result %+v", res.Sinks)
	}
	if time.Since(m.Created) > time.Minute {
		t.Errorf("created %v", m.Created)
	}
}

func TestCheckFileLocal(t *testing.T) {
	dir := t.TempDir()
	job := &Job{Name: "j", Source: SourceSpec{File: "r.json"}}
	ft, err := planFile(job, SinkSpec{CSV: &sink.CSVOptions{MaxRowsPerFile: 5}}, filepath.Join(dir, "a", "part-{{ .part }}.csv"), nil)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := (&Runner{}).checkFile(context.Background(), ft)
	if err != nil || !strings.Contains(msg, "folder "+dir+" is writable") || !strings.Contains(msg, "part-00000.csv will be created") {
		t.Errorf("%s, %v", msg, err)
	}
}
