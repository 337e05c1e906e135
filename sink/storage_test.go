package sink

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/pbicopy/pbicopy/internal/azure"
	"github.com/pbicopy/pbicopy/internal/sinktest"
)

func TestParseLocation(t *testing.T) {
	wd, _ := os.Getwd()
	for _, c := range []struct {
		in   string
		want location
		err  string
	}{
		{in: "out/sales.parquet", want: location{local: filepath.Join(wd, "out", "sales.parquet")}},
		{in: "/data/x.csv", want: location{local: filepath.FromSlash("/data/x.csv")}},
		{in: "az://lake/sales/date=2024-01-01/part-{{.part}}.parquet", want: location{blob: true, container: "lake", name: "sales/date=2024-01-01/part-{{.part}}.parquet"}},
		{in: "https://acct.blob.core.windows.net/lake/a/b.csv", want: location{blob: true, container: "lake", name: "a/b.csv", account: "acct", service: "https://acct.blob.core.windows.net/"}},
		{in: "https://acct.blob.core.chinacloudapi.cn/lake/b.csv", want: location{blob: true, container: "lake", name: "b.csv", account: "acct", service: "https://acct.blob.core.chinacloudapi.cn/"}},
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
		got, err := parseLocation(c.in)
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

func TestResolverFileSplit(t *testing.T) {
	t.Setenv(envConnectionString, "UseDevelopmentStorage=true")
	t.Setenv(envAccount, "")
	r := Resolver{Job: "j"}
	tr := true
	for _, c := range []struct {
		spec                   Spec
		tmpl                   string
		dir, prefix, name, loc string
	}{
		{Spec{Parquet: &ParquetOptions{MaxRowsPerFile: 10}}, "/data/sales/part-{{ .part }}.parquet",
			filepath.FromSlash("/data/sales/"), "", "part-{{.part}}.parquet", filepath.FromSlash("/data/sales/part-{{.part}}.parquet")},
		{Spec{CSV: &CSVOptions{MaxBytesPerFile: 1 << 20}}, "/data/sales/p={{ .part }}/x.csv",
			filepath.FromSlash("/data/sales/"), "", "p={{.part}}/x.csv", filepath.FromSlash("/data/sales/p={{.part}}/x.csv")},
		{Spec{CSV: &CSVOptions{Overwrite: &tr}}, "/data/x.csv", filepath.FromSlash("/data/"), "", "x.csv", filepath.FromSlash("/data/x.csv")},
		{Spec{Parquet: &ParquetOptions{MaxRowsPerFile: 10}}, "az://lake/sales/date={{ .day }}/part-{{ .part }}.parquet",
			"", "sales/date=2024-03-01/", "part-{{.part}}.parquet", "http://127.0.0.1:10000/devstoreaccount1/lake/sales/date=2024-03-01/part-{{.part}}.parquet"},
		{Spec{Parquet: &ParquetOptions{}}, "az://lake/x.parquet", "", "", "x.parquet", "http://127.0.0.1:10000/devstoreaccount1/lake/x.parquet"},
	} {
		if runtime.GOOS == "windows" && strings.HasPrefix(c.tmpl, "/") {
			continue
		}
		out, _ := c.spec.Output()
		ft, err := r.file(strings.NewReplacer("{{ .part }}", PartMarker, "{{ .day }}", "2024-03-01").Replace(c.tmpl), out)
		if err != nil {
			t.Errorf("%s: %v", c.tmpl, err)
			continue
		}
		if ft.dir != c.dir || ft.prefix != c.prefix || ft.name != c.name || ft.location != c.loc {
			t.Errorf("%s: dir %q prefix %q name %q location %q; want %q %q %q %q", c.tmpl, ft.dir, ft.prefix, ft.name, ft.location, c.dir, c.prefix, c.name, c.loc)
		}
	}
	if _, err := r.file("/x.csv", CSVOptions{MaxRowsPerFile: 5}.Output()); err == nil || !strings.Contains(err.Error(), "must contain {{ .part }}") {
		t.Errorf("split without {{ .part }}: %v", err)
	}
	if _, err := r.file("/x-"+PartMarker+".csv", CSVOptions{}.Output()); err == nil || !strings.Contains(err.Error(), "set maxRowsPerFile") {
		t.Errorf("{{ .part }} without a split: %v", err)
	}
}

// TestResolveAccount checks the endpoint and the credential chosen from the
// job's storage block and the environment.
func TestResolveAccount(t *testing.T) {
	const cs = "DefaultEndpointsProtocol=https;AccountName=envacct;AccountKey=a2V5;EndpointSuffix=core.windows.net"
	pbi := Resolver{Cloud: "usgov", Auth: &azure.AuthSpec{Tenant: "t", ClientID: "c", ClientSecret: "s"}}
	for _, c := range []struct {
		name     string
		env      string
		envAcct  string
		src      Resolver
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
		{name: "file source", st: &StorageSpec{Account: "acct5"}, path: "az://lake/x", endpoint: "https://acct5.blob.core.windows.net/", method: "Entra ID from the environment (DefaultAzureCredential)"},
		{name: "no account", src: pbi, path: "az://lake/x", err: "no storage account for az://lake/x"},
		{name: "job conn for another account", st: &StorageSpec{ConnectionString: cs}, path: "https://other.blob.core.windows.net/lake/x", err: "the connection string reaches https://envacct.blob.core.windows.net/, not https://other.blob.core.windows.net/"},
		{name: "endpoint against url", st: &StorageSpec{Endpoint: "https://a.blob.core.windows.net"}, path: "https://b.blob.core.windows.net/lake/x", err: "give one of them"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(envConnectionString, c.env)
			t.Setenv(envAccount, c.envAcct)
			r := c.src
			r.Job, r.Storage = "j", c.st
			ft, err := r.file(c.path, OutputOptions{Overwrite: true})
			if err != nil {
				t.Fatal(err)
			}
			if c.err != "" {
				if ft.resolveErr == nil || !strings.Contains(ft.resolveErr.Error(), c.err) {
					t.Errorf("error %v, want %q", ft.resolveErr, c.err)
				}
				if _, err := (&fileSink{kind: "csv", opts: &CSVOptions{}, fileTarget: ft}).open(context.Background(), sinktest.AllTypes, Env{}); err == nil || err.Error() != ft.resolveErr.Error() {
					t.Errorf("open: %v", err)
				}
				return
			}
			if ft.resolveErr != nil {
				t.Fatal(ft.resolveErr)
			}
			ep, err := ft.acct.Endpoint()
			if err != nil || ep != c.endpoint || ft.method != c.method {
				t.Errorf("endpoint %q (%v), method %q; want %q, %q", ep, err, ft.method, c.endpoint, c.method)
			}
			if !strings.HasPrefix(ft.location, c.endpoint+"lake/") {
				t.Errorf("location %q", ft.location)
			}
			desc := (&fileSink{kind: "csv", fileTarget: ft}).describe()
			if strings.Contains(desc, "a2V5") || strings.Contains(fmt.Sprint(ft), "a2V5") {
				t.Errorf("the description shows the key: %s", desc)
			}
		})
	}
}

func TestCheckFileLocal(t *testing.T) {
	dir := t.TempDir()
	target, err := Spec{CSV: &CSVOptions{MaxRowsPerFile: 5}}.Target(Resolver{Job: "j"}, filepath.Join(dir, "a", "part-"+PartMarker+".csv"), nil)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := target.Probe(context.Background(), Env{})
	if err != nil || !strings.Contains(msg, "folder "+dir+" is writable") || !strings.Contains(msg, "part-00000.csv will be created") {
		t.Errorf("%s, %v", msg, err)
	}
}
