package jobfile

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/pbicopy/pbicopy/internal/smallfile"
)

var update = flag.Bool("update", false, "rewrite golden files")

func testEnv(name string) (string, bool) {
	env := map[string]string{"PBI_CLIENT_SECRET": "s3cr3t-value", "WS": "ws-1", "EMPTY": ""}
	v, ok := env[name]
	return v, ok
}

const validJob = `name: sales-daily
source:
  powerbi:
    workspace: ${WS}
    dataset: ds-1
    query: EVALUATE Sales
    auth:
      tenant: t
      clientId: c
      clientSecret: ${PBI_CLIENT_SECRET}
mapping:
  columns:
    - { from: "Sales[OrderID]", to: order_id, type: int64 }
    - { from: "Sales[Amount]", to: amount, type: "decimal(19,4)" }
sinks:
  - parquet: { path: out/sales.parquet, compression: zstd }
  - csv: { path: out/sales.csv }
`

func TestLoadValidJob(t *testing.T) {
	job, warnings, err := Loader{LookupEnv: testEnv}.Load("job.yaml", []byte(validJob))
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings: %v", warnings)
	}
	if job.Source.PowerBI.Workspace != "ws-1" || job.Source.PowerBI.Auth.ClientSecret != "s3cr3t-value" {
		t.Errorf("env not expanded: %+v", job.Source.PowerBI)
	}
	if job.Sinks[0].Parquet.Compression != "zstd" || job.Sinks[1].CSV.Path != "out/sales.csv" {
		t.Errorf("sinks: %+v %+v", job.Sinks[0].Parquet, job.Sinks[1].CSV)
	}
	if got := job.lines.lineOf("sinks[1].csv.path"); got != 17 {
		t.Errorf("line of sinks[1].csv.path = %d, want 17", got)
	}
}

// TestLoadProblems checks one golden message per kind of mistake: every
// case is a folder testdata/config/<case>/ with job.yaml and expected.txt.
func TestLoadProblems(t *testing.T) {
	dirs, err := filepath.Glob("../testdata/config/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, "job.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			_, warnings, err := Loader{LookupEnv: testEnv}.Load("job.yaml", data)
			var lines []string
			if err != nil {
				lines = append(lines, err.Error())
			}
			for _, w := range warnings {
				lines = append(lines, w.String())
			}
			got := strings.Join(lines, "\n") + "\n"
			if strings.Contains(got, "s3cr3t-value") {
				t.Errorf("a secret leaked into a message:\n%s", got)
			}
			golden := filepath.Join(dir, "expected.txt")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("messages differ\n--- got\n%s--- want\n%s", got, want)
			}
		})
	}
}

func TestExpandEnv(t *testing.T) {
	env := map[string]string{"A": "1", "B": "x}y", "EMPTY": ""}
	lookup := func(n string) (string, bool) { v, ok := env[n]; return v, ok }
	cases := []struct {
		in, want string
		used     bool
		unset    string
		err      string
	}{
		{in: "plain", want: "plain"},
		{in: "${A}", want: "1", used: true},
		{in: "a${A}b${B}c", want: "a1bx}yc", used: true},
		{in: "$${A}", want: "${A}"},
		{in: "$A and $", want: "$A and $"},
		{in: "${A:-d}", want: "1", used: true},
		{in: "${MISSING:-d}", want: "d"},
		{in: "${EMPTY:-d}", want: "d"},
		{in: "${EMPTY}", want: "", used: true},
		{in: "${MISSING:-}x", want: "x"},
		{in: "${MISSING:-a b:-c}", want: "a b:-c"},
		{in: "$${A:-d}", want: "${A:-d}"},
		{in: "${MISSING}", want: "${MISSING}", unset: "MISSING"},
		{in: "${A}/${M1}/${M2}/${M1}", want: "1/${M1}/${M2}/${M1}", used: true, unset: "M1 M2"},
		{in: "${A", err: "unclosed"},
		{in: "${1X}", err: "${1X} is not a valid environment variable reference"},
		{in: "${:-x}", err: "not a valid environment variable reference"},
		{in: "${A:-${B}}", err: "a default cannot hold another ${...}"},
	}
	for _, c := range cases {
		got, used, unset, err := expandEnv(c.in, lookup)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("expandEnv(%q) error = %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want || used != c.used || strings.Join(unset, " ") != c.unset {
			t.Errorf("expandEnv(%q) = %q, %v, %v, %v; want %q, %v, %s", c.in, got, used, unset, err, c.want, c.used, c.unset)
		}
	}
}

func TestLoadPathsAllOrNothing(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.yaml", validJob)
	write("b.yaml", strings.Replace(validJob, "name: sales-daily", "name: Bad_Name", 1))
	write("c.yml", strings.Replace(validJob, "compression: zstd", "compresion: zstd", 1))
	write("notes.txt", "not a job")
	jobs, _, err := Loader{LookupEnv: testEnv}.LoadPaths([]string{dir})
	if err == nil || jobs != nil {
		t.Fatalf("want an error and no jobs, got %v, %d jobs", err, len(jobs))
	}
	msg := err.Error()
	for _, want := range []string{"b.yaml:1: name:", "c.yml:16: sinks[0].parquet.compresion: unknown field", `did you mean "compression"?`} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	write("b.yaml", strings.Replace(validJob, "name: sales-daily", "name: other", 1))
	write("c.yml", strings.Replace(validJob, "name: sales-daily", "name: third", 1))
	jobs, _, err = Loader{LookupEnv: testEnv}.LoadPaths([]string{dir})
	if err != nil || len(jobs) != 3 {
		t.Fatalf("LoadPaths = %d jobs, %v", len(jobs), err)
	}
	write("d.yaml", validJob)
	if _, _, err = (Loader{LookupEnv: testEnv}).LoadPaths([]string{dir}); err == nil || !strings.Contains(err.Error(), "already used") {
		t.Errorf("duplicate job names: %v", err)
	}
}

func TestQueryTemplateMustQuote(t *testing.T) {
	for q, ok := range map[string]bool{
		`EVALUATE FILTER(Sales, Sales[Region] = {{ dax .region }})`:   true,
		`EVALUATE FILTER(Sales, Sales[Region] = {{ .region | dax }})`: true,
		`EVALUATE FILTER(Sales, Sales[Region] = "{{ .region }}")`:     false,
		`{{ if .region }}EVALUATE Sales{{ end }}`:                     true,
		`{{ if .region }}{{ .region }}{{ end }}`:                      false,
	} {
		tmpl, err := parseTemplate("q", q)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkQueryTemplate(tmpl); (err == nil) != ok {
			t.Errorf("%s: err = %v, want ok=%v", q, err, ok)
		}
	}
	tmpl, _ := parseTemplate("q", `x = {{ dax .v }}`)
	got, err := render(tmpl, map[string]any{"v": `a"b`})
	if err != nil || got != `x = "a""b"` {
		t.Errorf("render = %q, %v", got, err)
	}
	if _, err := render(tmpl, map[string]any{}); err == nil || !strings.Contains(err.Error(), "--param v=VALUE") {
		t.Errorf("missing param: %v", err)
	}
}

func TestLoadPathsBoundsTheFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "big.yaml")
	big := validJob + "# " + strings.Repeat("x", 1<<20) + "\n"
	if err := os.WriteFile(file, []byte(big), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := Loader{LookupEnv: testEnv}.LoadPaths([]string{file})
	if err == nil || !strings.Contains(err.Error(), file+": cannot read: the file holds more than the 1 MiB allowed") {
		t.Errorf("a job file past the limit: %v", err)
	}
}

// TestLoadRefusesASecondDocument loads files with a second YAML document:
// it is refused at its line, and the first is still checked.
func TestLoadRefusesASecondDocument(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{validJob + "---\n", "job.yaml:18: a second YAML document starts here (after ---)"},
		{validJob + "--- # another job\nname: x\n", "job.yaml:18: a second YAML document starts here"},
		{validJob + "---\nname: [\n", "job.yaml:19: not valid YAML"},
		{strings.Replace(validJob, "compression: zstd", "compression: lz4", 1) + "---\nname: x\n",
			"job.yaml:16: sinks[0].parquet.compression: \"lz4\" is not allowed: use snappy (the default), zstd, gzip or none\njob.yaml:18: a second YAML document starts here"},
	} {
		_, _, err := Loader{LookupEnv: testEnv}.Load("job.yaml", []byte(c.text))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q:\n%v\nwant %q", c.text, err, c.want)
		}
	}
	for _, ok := range []string{"---\n" + validJob, validJob + "...\n", validJob + "# ---\n"} {
		if _, _, err := (Loader{LookupEnv: testEnv}).Load("job.yaml", []byte(ok)); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}

// TestLoadAliasBombs loads files whose aliases (*name) would expand to
// billions of values: each is refused, in bounded time and memory.
// yaml.v3 limits aliasing only when it decodes into Go values, not into
// the yaml.Node the loader walks.
func TestLoadAliasBombs(t *testing.T) {
	// The classic: each level holds ten of the one below.
	laughs := "name: x\nsource: { file: r.json }\nstorage: { account: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol] }\nmapping:\n  columns:\n"
	for i := 1; i <= 9; i++ {
		laughs += fmt.Sprintf("    - { from: &l%d [%s], to: x, type: int64 }\n", i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d, ", i-1), 10), ", "))
	}
	laughs += "sinks: [" + strings.Repeat("{ postgres: { table: t, mode: merge, key: *l9 } }, ", 10) + "]\n"
	// The widest the types allow, in a file of the largest size: every
	// sink's key list is the same long list.
	var keys strings.Builder
	keys.WriteString("name: x\nsource: { file: r.json }\nstorage: { account: &k [" + strings.Repeat("a, ", 2000) + "a] }\nsinks: [")
	for keys.Len() < smallfile.JobFile-64 {
		keys.WriteString("{postgres: {table: t, key: *k}},")
	}
	keys.WriteString("]\n")
	for name, text := range map[string]string{"laughs": laughs, "keys": keys.String()} {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, _, err := Loader{LookupEnv: testEnv}.Load("bomb.yaml", []byte(text))
			runtime.ReadMemStats(&after)
			if err == nil || name == "keys" && !strings.Contains(err.Error(), "expand to more than 10000 values") {
				t.Fatalf("not refused: %.500v", err)
			}
			// Decoding YAML costs up to ~150 bytes per byte of input; the
			// expansion must not add more than that again.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 300*uint64(len(text))+64<<20 {
				t.Errorf("%d bytes of YAML allocated %d MiB", len(text), alloc>>20)
			}
		})
	}
}

// TestLoadSyntaxErrorLines checks the line of YAML errors that yaml.v3
// gives without one: on the first line, and from its reader.
func TestLoadSyntaxErrorLines(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{`"`, "job.yaml:1: not valid YAML: found unexpected end of stream"},
		{"name: x\nsource: { file: r.json }\nsinks: \a\n", "job.yaml:3: not valid YAML: the character U+0007 is not allowed"},
		{"name: x\r\nsource: { file: r\xff.json }\n", "job.yaml:2: not valid YAML: the file is not UTF-8 text"},
		{"\xef\xbb\xbfname: x\rsource: \x01\n", "job.yaml:2: not valid YAML: the character U+0001 is not allowed"},
		{"name: x\u2028sinks: \x7f", "job.yaml:2: not valid YAML: the character U+007F is not allowed"},
	} {
		_, _, err := Loader{LookupEnv: testEnv}.Load("job.yaml", []byte(c.text))
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.text, err, c.want)
		}
	}
}

// TestLoadSkipEnv loads jobs whose variables are unset under SkipEnv: each
// unset value is one note, the values count as given, and the job is
// valid; without SkipEnv, the same values are one error each.
func TestLoadSkipEnv(t *testing.T) {
	text := `name: ${JOB_NAME}
source:
  powerbi:
    workspace: ${PBI_WORKSPACE_ID}
    dataset: ${PBI_DATASET_ID}
    endpoint: ${PBI_ENDPOINT}
    cloud: ${PBI_CLOUD:-public}
    query: EVALUATE Sales
    paging: { key: "Sales[ID]" }
    auth:
      method: ${AUTH_METHOD}
      tenant: ${AZURE_TENANT_ID}
      clientId: ${PBI_CLIENT_ID}
      clientSecret: ${PBI_CLIENT_SECRET}
mapping:
  columns:
    - { from: "${KEY_COLUMN}", to: id, type: "${ID_TYPE}" }
sinks:
  - csv: { path: "${OUT}/sales.csv", overwrite: "${OVERWRITE}", maxRowsPerFile: "${ROWS}" }
storage: { account: "${ACCOUNT}", sasToken: "${SAS}", endpoint: "${BLOB_ENDPOINT}" }
`
	text = strings.Replace(text, "    query: EVALUATE Sales\n", "    table: Sales\n", 1)
	none := func(string) (string, bool) { return "", false }
	vars := []string{"JOB_NAME", "PBI_WORKSPACE_ID", "PBI_DATASET_ID", "PBI_ENDPOINT", "AUTH_METHOD", "AZURE_TENANT_ID", "PBI_CLIENT_ID",
		"PBI_CLIENT_SECRET", "KEY_COLUMN", "ID_TYPE", "OUT", "OVERWRITE", "ROWS", "ACCOUNT", "SAS", "BLOB_ENDPOINT"}

	job, notes, err := Loader{LookupEnv: none, SkipEnv: true}.Load("job.yaml", []byte(text))
	if err != nil {
		t.Fatalf("under SkipEnv: %v", err)
	}
	if len(notes) != len(vars) {
		t.Errorf("%d notes for %d unset variables:\n%s", len(notes), len(vars), problemLines(notes))
	}
	for i, n := range notes {
		want := "job.yaml:" + strconv.Itoa(n.Line) + ": note: " + n.Path + ": environment variable " + vars[min(i, len(vars)-1)] + " is not set: the value is not checked"
		if n.Severity != SeverityNote || n.String() != want {
			t.Errorf("note %d = %q, want %q", i, n, want)
		}
	}
	if job.Source.PowerBI.Auth.ClientSecret != "${PBI_CLIENT_SECRET}" || job.Source.PowerBI.Cloud != "public" {
		t.Errorf("values: secret %q, cloud %q", job.Source.PowerBI.Auth.ClientSecret, job.Source.PowerBI.Cloud)
	}

	_, _, err = Loader{LookupEnv: none}.Load("job.yaml", []byte(text))
	var inv *InvalidError
	if !errors.As(err, &inv) || len(inv.Problems) != len(vars) {
		t.Fatalf("without SkipEnv, want %d errors:\n%v", len(vars), err)
	}
	for _, p := range inv.Problems {
		if !strings.HasSuffix(p.Message, " is not set") {
			t.Errorf("a problem that is not the variable's: %s", p)
		}
	}

	// Two jobs whose names are unset are not the same job.
	dir := t.TempDir()
	for _, f := range []string{"a.yaml", "b.yaml"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if jobs, _, err := (Loader{LookupEnv: none, SkipEnv: true}).LoadPaths([]string{dir}); err != nil || len(jobs) != 2 {
		t.Errorf("LoadPaths = %d jobs, %v", len(jobs), err)
	}
}

func problemLines(ps []Problem) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(p.String() + "\n")
	}
	return b.String()
}

// TestLoadAuthFromEnv loads auth blocks that name a service principal and
// leave its credential to the environment.
func TestLoadAuthFromEnv(t *testing.T) {
	job := func(auth, storageAuth string) string {
		return "name: j\nsource:\n  powerbi:\n    workspace: w\n    dataset: d\n    query: EVALUATE Sales\n    auth: " + auth +
			"\nstorage: { account: lake1, auth: " + storageAuth + " }\nsinks: [ { csv: { path: az://lake/x.csv } } ]\n"
	}
	const sp, cert = "{ tenant: t, clientId: c }", "{ method: clientCertificate, tenant: t, clientId: c }"
	env := func(kv ...string) LookupEnv {
		return func(n string) (string, bool) {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == n {
					return kv[i+1], true
				}
			}
			return "", false
		}
	}
	for _, c := range []struct {
		name, text  string
		env         LookupEnv
		skip        bool
		secret      string // the source's secret once loaded
		certificate string // storage's certificate once loaded
		problems    []string
	}{
		{name: "AZURE_CLIENT_SECRET", text: job(sp, cert), env: env("AZURE_CLIENT_SECRET", "a-secret", "PBI_CLIENT_SECRET", "p-secret", "AZURE_CLIENT_CERTIFICATE_PATH", "/run/app.pem"),
			secret: "a-secret", certificate: "/run/app.pem"},
		{name: "PBI_CLIENT_SECRET", text: job("{ method: clientSecret, tenant: t, clientId: c }", cert), env: env("PBI_CLIENT_SECRET", "p-secret", "AZURE_CLIENT_CERTIFICATE_PATH", "/run/app.pem"),
			secret: "p-secret", certificate: "/run/app.pem"},
		{name: "none set", text: job(sp, cert), env: env(), problems: []string{
			"j.yaml:7: source.powerbi.auth: required: a credential: clientSecret (or clientSecretFile, clientSecretFrom) or certificate, or one of AZURE_CLIENT_SECRET, PBI_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH set in the environment; or method: workloadIdentity, managedIdentity, azureCLI or default",
			"j.yaml:8: storage.auth.certificate: required: a PEM or PFX file with the certificate and its private key, or AZURE_CLIENT_CERTIFICATE_PATH set in the environment",
		}},
		{name: "none set, method clientSecret", text: job("{ method: clientSecret, tenant: t, clientId: c }", "{ method: azureCLI }"), env: env(), problems: []string{
			"j.yaml:7: source.powerbi.auth.clientSecret: required: clientSecret, clientSecretFile or clientSecretFrom, or AZURE_CLIENT_SECRET or PBI_CLIENT_SECRET set in the environment",
		}},
		{name: "none set, skipping the environment", text: job(sp, cert), env: env(), skip: true,
			secret: "${AZURE_CLIENT_SECRET}", certificate: "${AZURE_CLIENT_CERTIFICATE_PATH}", problems: []string{
				"j.yaml:7: note: source.powerbi.auth.clientSecret: not given, so it comes from the environment, where none of AZURE_CLIENT_SECRET, PBI_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH is set: the credential is not checked",
				"j.yaml:8: note: storage.auth.certificate: not given, so it comes from the environment, where none of AZURE_CLIENT_CERTIFICATE_PATH is set: the credential is not checked",
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			j, others, err := Loader{LookupEnv: c.env, SkipEnv: c.skip}.Load("j.yaml", []byte(c.text))
			var got []string
			var inv *InvalidError
			if errors.As(err, &inv) {
				others = append(inv.Problems, others...)
			} else if err != nil {
				t.Fatal(err)
			}
			for _, p := range others {
				got = append(got, p.String())
			}
			if strings.Join(got, "\n") != strings.Join(c.problems, "\n") {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.problems, "\n"))
			}
			if j == nil {
				return
			}
			if a := j.Source.PowerBI.Auth; a.ClientSecret != c.secret {
				t.Errorf("the source's secret is %q, want %q", a.ClientSecret, c.secret)
			}
			if a := j.Storage.Auth; a.Certificate != c.certificate {
				t.Errorf("storage's certificate is %q, want %q", a.Certificate, c.certificate)
			}
		})
	}
}

// TestLoadDefaultSecretIsLiteral: a secret given as a ${NAME:-default}
// default is written in the file, and warned of like one.
func TestLoadDefaultSecretIsLiteral(t *testing.T) {
	text := strings.Replace(validJob, "clientSecret: ${PBI_CLIENT_SECRET}", "clientSecret: ${NOT_SET:-abc~secret}", 1)
	job, warnings, err := Loader{LookupEnv: testEnv}.Load("job.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if job.Source.PowerBI.Auth.ClientSecret != "abc~secret" || len(warnings) != 1 ||
		warnings[0].String() != "job.yaml:10: warning: source.powerbi.auth.clientSecret: the secret is written in the job file: reference an environment variable instead, e.g. ${PBI_CLIENT_SECRET}, and rotate this secret" {
		t.Errorf("secret %q, warnings %v", job.Source.PowerBI.Auth.ClientSecret, warnings)
	}
}
