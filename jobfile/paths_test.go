package jobfile

import (
	"strings"
	"testing"
)

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
		{"out/{{ .v }}/sales.parquet", `..\..\etc`, `holds a \: a template value may not hold one`},
		{"out/{{ .v }}.csv", "a\x00b", "holds a NUL byte"},
		{"a{{ .v }}", "z://lake/x.csv", "turns a local path into a URL"},
		{"out/..{{ .v }}", "", `".." segment`},
		{"out/.{{ .v }}", "", `"." segment`},
		{"out/.{{ .v }}", "x", ""},
		{"out/x{{ .v }}", "", ""},
		{"out/{{ .v }}", "", "empty segment"},
		{"{{ .v }}/x.csv", "az://lake/dir", ""},
		{"az://lake/{{ .v }}", `a\b`, `holds a \`},
		{"az://lake/{{ .v }}", "a\x00b", "holds a NUL byte"},
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
				"j.yaml:6: storage.cloud: \"mars\" is not allowed",
				"j.yaml:7: storage.sasToken: not a SAS token",
				"j.yaml:8: storage.blockSize: 1000 is too small",
				"j.yaml:9: storage.concurrency: 100 is out of range: use 0 to 64",
			}},
		{"http off loopback", base + "storage:\n  endpoint: http://lake1.blob.core.windows.net\nsinks: [ { csv: { path: az://lake/x.csv } } ]\n",
			[]string{`j.yaml:4: storage.endpoint: "http://lake1.blob.core.windows.net" uses http, which would send the data and the credentials in clear text: use https (http is accepted on loopback only`}},
		{"http connection string", base + "storage:\n  connectionString: 'DefaultEndpointsProtocol=http;AccountName=lake1;AccountKey=a2V5'\nsinks: [ { csv: { path: az://lake/x.csv } } ]\n",
			[]string{`j.yaml:4: storage.connectionString: "http://lake1.blob.core.windows.net" uses http`}},
		{"http BlobEndpoint", base + "storage:\n  connectionString: 'BlobEndpoint=http://10.1.2.3/lake1;SharedAccessSignature=sv=2024&sig=abc'\nsinks: [ { csv: { path: az://lake/x.csv } } ]\n",
			[]string{`j.yaml:4: storage.connectionString: "http://10.1.2.3/lake1" uses http`}},
		{"http on loopback", base + "storage:\n  endpoint: http://127.0.0.1:10000/devstoreaccount1\n  accountKey: a2V5\nsinks:\n  - csv: { path: az://lake/x.csv }\n", nil},
		{"http on localhost and ::1", base + "storage:\n  connectionString: 'BlobEndpoint=http://[::1]:10000/devstoreaccount1;AccountName=devstoreaccount1;AccountKey=a2V5'\nsinks:\n  - csv: { path: az://lake/x.csv }\n", nil},
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
			[]string{"j.yaml:4: sinks[0].csv.maxRowsPerFile: -1 is out of range: use 0 or more", "sinks[0].csv.maxBytesPerFile: 10 is out of range"}},
		{"storage auth", base + "storage:\n  account: lake1\n  auth: { method: nope }\nsinks: [ { csv: { path: az://lake/x.csv } } ]\n",
			[]string{"j.yaml:5: storage.auth.method: \"nope\" is not allowed"}},
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
