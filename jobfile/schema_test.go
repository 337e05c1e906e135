package jobfile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pbicopy/pbicopy/internal/azure"

	"go.yaml.in/yaml/v3"

	"github.com/pbicopy/pbicopy/mapping"
)

const schemaFile = "../docs/job.schema.json"

// schemaModeline is the first line of every example job: it points the
// YAML language server at the schema.
const schemaModeline = "# yaml-language-server: $schema=../docs/job.schema.json"

// anyValue gives every ${NAME} a value that passes validation, so that job
// files validate without credentials.
func anyValue(name string) (string, bool) {
	switch {
	case strings.Contains(name, "ENDPOINT"), strings.Contains(name, "AUTHORITY"):
		return "https://" + strings.ToLower(name) + ".example/", true
	case strings.Contains(name, "CLOUD"):
		return "usgov", true
	}
	return "value-of-" + name, true
}

// checkGolden compares got with the file at path, or rewrites the file
// with -update.
func checkGolden(t *testing.T, path string, got []byte, test string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v: generate it with: go test ./jobfile -run %s -update", err, test)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is out of date with the Go types (first difference at line %d): run go test ./jobfile -run %s -update, and commit the result",
			path, firstDiffLine(got, want), test)
	}
}

func firstDiffLine(a, b []byte) int {
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := range min(len(la), len(lb)) {
		if la[i] != lb[i] {
			return i + 1
		}
	}
	return min(len(la), len(lb)) + 1
}

func TestJSONSchemaUpToDate(t *testing.T) {
	got, err := JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	again, err := JSONSchema()
	if err != nil || !bytes.Equal(got, again) {
		t.Fatalf("JSONSchema is not deterministic (%v)", err)
	}
	if !json.Valid(got) {
		t.Fatal("JSONSchema is not valid JSON")
	}
	checkGolden(t, schemaFile, got, "TestJSONSchemaUpToDate")
}

// loadSchema returns the generated schema, decoded.
func loadSchema(t *testing.T) map[string]any {
	t.Helper()
	data, err := JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	if s["$schema"] != SchemaDialect {
		t.Fatalf("$schema = %v", s["$schema"])
	}
	return s
}

// schemaCheck validates v against schema s, supporting exactly the
// keywords JSONSchema emits (draft-07 semantics); any other keyword fails
// the test, so the schemaChecker cannot silently pass what it does not know. It
// returns one message per violation, each starting with the field path.
func schemaCheck(t *testing.T, s map[string]any, v any) []string {
	t.Helper()
	c := &schemaChecker{t: t}
	c.check(s, v, "")
	return c.errs
}

type schemaChecker struct {
	t    *testing.T
	errs []string
}

func (c *schemaChecker) errorf(path, format string, args ...any) {
	c.errs = append(c.errs, path+": "+fmt.Sprintf(format, args...))
}

// sub checks v against s on its own, returning whether it passed.
func (c *schemaChecker) sub(s map[string]any, v any, path string) bool {
	inner := &schemaChecker{t: c.t}
	inner.check(s, v, path)
	return len(inner.errs) == 0
}

func (c *schemaChecker) check(s map[string]any, v any, path string) {
	c.t.Helper()
	for _, k := range slices.Sorted(maps.Keys(s)) {
		switch k {
		case "$schema", "title", "description", "default",
			"type", "properties", "additionalProperties", "required", "enum", "pattern",
			"oneOf", "anyOf", "items", "minItems", "maxLength", "minimum", "maximum",
			"dependencies", "propertyNames":
		default:
			c.t.Fatalf("schema at %q uses keyword %q, which the test schemaChecker does not implement", path, k)
		}
	}
	if ty, ok := s["type"]; ok {
		var names []string
		switch ty := ty.(type) {
		case string:
			names = []string{ty}
		case []any:
			for _, n := range ty {
				names = append(names, n.(string))
			}
		}
		if !slices.ContainsFunc(names, func(n string) bool { return schemaTypeIs(n, v) }) {
			c.errorf(path, "expected %s, found %T %v", strings.Join(names, " or "), v, v)
			return
		}
	}
	if enum, ok := s["enum"].([]any); ok && !slices.Contains(enum, v) {
		c.errorf(path, "%v is not one of %v", v, enum)
	}
	if str, ok := v.(string); ok {
		if p, ok := s["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(str) {
			c.errorf(path, "%q does not match %s", str, p)
		}
		if n, ok := s["maxLength"].(float64); ok && float64(len([]rune(str))) > n {
			c.errorf(path, "longer than %v characters", n)
		}
	}
	if n, ok := jsonNumber(v); ok {
		if m, ok := s["minimum"].(float64); ok && n < m {
			c.errorf(path, "%v is less than %v", n, m)
		}
		if m, ok := s["maximum"].(float64); ok && n > m {
			c.errorf(path, "%v is more than %v", n, m)
		}
	}
	if list, ok := v.([]any); ok {
		if n, ok := s["minItems"].(float64); ok && float64(len(list)) < n {
			c.errorf(path, "fewer than %v items", n)
		}
		if items, ok := s["items"].(map[string]any); ok {
			for i, e := range list {
				c.check(items, e, fmt.Sprintf("%s[%d]", path, i))
			}
		}
	}
	if obj, ok := v.(map[string]any); ok {
		props, _ := s["properties"].(map[string]any)
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			kp := join(path, k)
			if ps, ok := props[k]; ok {
				c.check(ps.(map[string]any), obj[k], kp)
				continue
			}
			switch ap := s["additionalProperties"].(type) {
			case bool:
				if !ap {
					c.errorf(kp, "unknown field %q", k)
				}
			case map[string]any:
				c.check(ap, obj[k], kp)
			}
		}
		if pn, ok := s["propertyNames"].(map[string]any); ok {
			for _, k := range slices.Sorted(maps.Keys(obj)) {
				c.check(pn, k, join(path, k))
			}
		}
		if deps, ok := s["dependencies"].(map[string]any); ok {
			for _, k := range slices.Sorted(maps.Keys(deps)) {
				if _, given := obj[k]; !given {
					continue
				}
				for _, n := range deps[k].([]any) {
					if _, ok := obj[n.(string)]; !ok {
						c.errorf(join(path, n.(string)), "required with %s", k)
					}
				}
			}
		}
		if req, ok := s["required"].([]any); ok {
			for _, r := range req {
				if _, ok := obj[r.(string)]; !ok {
					c.errorf(join(path, r.(string)), "required")
				}
			}
		}
	}
	if alts, ok := s["oneOf"].([]any); ok {
		n := 0
		for _, a := range alts {
			if c.sub(a.(map[string]any), v, path) {
				n++
			}
		}
		if n != 1 {
			c.errorf(path, "matches %d of the oneOf alternatives, not exactly one", n)
		}
	}
	if alts, ok := s["anyOf"].([]any); ok {
		if !slices.ContainsFunc(alts, func(a any) bool { return c.sub(a.(map[string]any), v, path) }) {
			c.errorf(path, "%v matches none of the anyOf alternatives", v)
		}
	}
}

func schemaTypeIs(name string, v any) bool {
	switch name {
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "number":
		_, ok := jsonNumber(v)
		return ok
	case "integer":
		f, ok := jsonNumber(v)
		return ok && f == math.Trunc(f)
	case "null":
		return v == nil
	}
	panic("unknown type " + name)
}

func jsonNumber(v any) (float64, bool) {
	switch v := v.(type) {
	case int:
		return float64(v), true
	case int64:
		return float64(v), true
	case uint64:
		return float64(v), true
	case float64:
		return v, true
	}
	return 0, false
}

// decodeYAML decodes a job file as the YAML language server sees it.
func decodeYAML(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatalf("decode YAML: %v", err)
	}
	return v
}

// schemaValidJobs are valid jobs beyond the examples, covering what they do not:
// every sink and option, the file source, other credentials, ${NAME} in
// every kind of string field.
var schemaValidJobs = map[string]string{
	"every-sink-option": `name: all-options
source: { file: testdata/response.json }
mapping:
  columns:
    - { from: "[a]", to: a, type: string }
    - { from: "[b]", to: b, type: "decimal( 38 , 0 )" }
    - { from: "[c]", to: c, type: timestamp }
  unmapped: ignore
sinks:
  - parquet: { path: out/a.parquet, compression: none, rowGroupBytes: 1048576 }
  - csv: { path: out/a.csv, lineEnding: crlf, header: false }
  - postgres:
      dsn: "host=${PGHOST} dbname=x"
      table: '"my.schema"."a ""b"""'
      mode: replacePartition
      partitionColumn: a
      preSQL: SET LOCAL work_mem = '64MB'
      postSQL: ANALYZE x
      createTable: false
      schemaEvolution: addColumns
      stripNul: true
`,
	"certificate-usgov": `name: cert
source:
  powerbi:
    workspace: w
    dataset: d
    query: EVALUATE Sales
    endpoint: ${PBI_ENDPOINT}
    cloud: ${PBI_CLOUD}
    impersonatedUser: someone@example.com
    auth:
      tenant: t
      clientId: c
      certificate: /run/secrets/pbi.pem
      certificatePassword: ${CERT_PASSWORD}
      authorityHost: ${PBI_AUTHORITY}
sinks:
  - parquet: { path: out/a.parquet }
`,
	"workload-identity": `name: wi
source:
  powerbi:
    workspace: w
    dataset: d
    query: EVALUATE Sales
    cloud: china
    auth: { method: workloadIdentity, tenant: t, clientId: c, tokenFile: /var/run/token }
sinks:
  - postgres: { table: sales, mode: merge, key: [a, b] }
`,
	"managed-identity": `name: mi
source:
  powerbi: { workspace: w, dataset: d, query: EVALUATE Sales, auth: { method: managedIdentity } }
sinks:
  - csv: { path: "out/{{ .x }}.csv" }
`,
	"secret-from-key-vault": `name: kv
source:
  powerbi: { workspace: w, dataset: d, query: EVALUATE Sales, auth: { tenant: t, clientId: c, clientSecretFrom: "keyvault://vault/secret" } }
sinks:
  - csv: { path: out/a.csv }
`,
}

// exampleJobs returns every valid job the tests know: the example job
// files, the jobs above, the loader's valid test job, the golden test jobs
// the loader accepts and the reference's examples put together.
func exampleJobs(t *testing.T) map[string][]byte {
	t.Helper()
	jobs := map[string][]byte{"load_test.go validJob": []byte(validJob), "reference examples": referenceJob(), "reference examples, incremental": referenceJobWithout("partition")}
	for name, text := range schemaValidJobs {
		jobs[name] = []byte(text)
	}
	files, err := filepath.Glob("../jobs/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example jobs: %v", err)
	}
	golden, _ := filepath.Glob("../testdata/config/*/job.yaml")
	for _, f := range append(files, golden...) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(f, "testdata") {
			if _, _, err := (Loader{LookupEnv: anyValue}).Load(f, data); err != nil {
				continue
			}
		}
		jobs[f] = data
	}
	return jobs
}

// referenceJob puts the reference's examples together into one job.
func referenceJob() []byte { return referenceJobWithout("incremental") }

// referenceJobWithout is the job the reference's examples make, but one
// section: partition and incremental are distinct modes.
func referenceJobWithout(section string) []byte {
	var b strings.Builder
	for _, f := range specFields(reflect.TypeFor[Job]()) {
		if f.name != section {
			b.WriteString(referenceExamples[f.name])
		}
	}
	return []byte(b.String())
}

func TestSchemaAcceptsValidJobs(t *testing.T) {
	s := loadSchema(t)
	jobs := exampleJobs(t)
	for _, name := range slices.Sorted(maps.Keys(jobs)) {
		t.Run(name, func(t *testing.T) {
			data := jobs[name]
			if _, _, err := (Loader{LookupEnv: anyValue}).Load(name, data); err != nil {
				t.Fatalf("the loader refuses the job, so it cannot test the schema:\n%v", err)
			}
			if errs := schemaCheck(t, s, decodeYAML(t, data)); len(errs) > 0 {
				t.Errorf("the loader accepts the job, the schema does not:\n%s", strings.Join(errs, "\n"))
			}
		})
	}
}

func TestSchemaRejectsInvalidJobs(t *testing.T) {
	s := loadSchema(t)
	const base = "name: t\nsource: { file: r.json }\nsinks: [ { csv: { path: a.csv } } ]\n"
	cases := []struct {
		name, job string
		want      []string // paths the schema must report
	}{
		{"unknown top-level field", base + "timeout: 30s\n", []string{"timeout"}},
		{"unknown nested field", strings.Replace(base, "path: a.csv", "path: a.csv, delimiter: ';'", 1), []string{"sinks[0].csv.delimiter"}},
		{"wrong enum value", strings.Replace(base, "csv: { path: a.csv }", "parquet: { path: a.parquet, compression: lz4 }", 1), []string{"sinks[0].parquet.compression"}},
		{"wrong type", strings.Replace(base, "path: a.csv", "path: a.csv, header: maybe", 1), []string{"sinks[0].csv.header"}},
		{"list for a scalar", strings.Replace(base, "path: a.csv", "path: [a, b]", 1), []string{"sinks[0].csv.path"}},
		{"bad job name", strings.Replace(base, "name: t", "name: Sales_Daily", 1), []string{"name"}},
		{"job name too long", strings.Replace(base, "name: t", "name: "+strings.Repeat("a", 64), 1), []string{"name"}},
		{"no sinks", strings.Replace(base, "sinks: [ { csv: { path: a.csv } } ]", "sinks: []", 1), []string{"sinks"}},
		{"two kinds in one sink", strings.Replace(base, "csv: { path: a.csv }", "csv: { path: a.csv }, parquet: { path: b.parquet }", 1), []string{"sinks[0]"}},
		{"empty sink", strings.Replace(base, "{ csv: { path: a.csv } }", "{}", 1), []string{"sinks[0]"}},
		{"two sources", strings.Replace(base, "{ file: r.json }", "{ file: r.json, powerbi: { workspace: w, dataset: d, query: q, auth: {} } }", 1), []string{"source"}},
		{"query and table", strings.Replace(base, "{ file: r.json }", "{ powerbi: { workspace: w, dataset: d, query: q, table: Sales, auth: {} } }", 1), []string{"source.powerbi"}},
		{"bad column type", base + "mapping: { columns: [ { from: '[a]', to: a, type: integer } ] }\n", []string{"mapping.columns[0].type"}},
		{"bad decimal", base + "mapping: { columns: [ { from: '[a]', to: a, type: decimal(10) } ] }\n", []string{"mapping.columns[0].type"}},
		{"missing column field", base + "mapping: { columns: [ { from: '[a]', type: int64 } ] }\n", []string{"mapping.columns[0].to"}},
		{"row group too big", strings.Replace(base, "csv: { path: a.csv }", "parquet: { path: a.parquet, rowGroupBytes: 2147483648 }", 1), []string{"sinks[0].parquet.rowGroupBytes"}},
		{"bad cloud", strings.Replace(base, "{ file: r.json }", "{ powerbi: { workspace: w, dataset: d, query: q, cloud: germany, auth: {} } }", 1), []string{"source.powerbi.cloud"}},
		{"bad param type", base + "params: { day: { type: timestamp } }\n", []string{"params.day.type"}},
		{"bad param name", base + "params: { 1day: { type: date } }\n", []string{"params.1day"}},
		{"param without type", base + "params: { day: { default: today } }\n", []string{"params.day.type"}},
		{"table without paging", strings.Replace(base, "{ file: r.json }", "{ powerbi: { workspace: w, dataset: d, table: Sales, auth: {} } }", 1), []string{"source.powerbi.paging"}},
		{"paging without table", strings.Replace(base, "{ file: r.json }", "{ powerbi: { workspace: w, dataset: d, query: q, paging: { key: 'Sales[ID]' }, auth: {} } }", 1), []string{"source.powerbi.table"}},
		{"partition without step", base + "params: { day: { type: date } }\npartition: { param: day }\n", []string{"partition.step"}},
		{"unknown param field", base + "params: { day: { type: date, format: x } }\n", []string{"params.day.format"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs := schemaCheck(t, s, decodeYAML(t, []byte(tc.job)))
			for _, p := range tc.want {
				if !slices.ContainsFunc(errs, func(e string) bool { return strings.HasPrefix(e, p+": ") }) {
					t.Errorf("no schema error at %s; errors:\n%s", p, strings.Join(errs, "\n"))
				}
			}
		})
	}
}

// TestSchemaRejectsGoldenProblems checks the schema against the loader's
// golden invalid jobs: what the loader refuses as a matter of structure or
// allowed values, the schema refuses too.
func TestSchemaRejectsGoldenProblems(t *testing.T) {
	s := loadSchema(t)
	want := map[string][]string{
		"unknown-field":    {"source.powerbi.timout", "sinks[0].parquet.compresion"},
		"bad-values":       {"name", "source", "mapping.columns", "mapping.unmapped", "sinks[0]", "sinks[1].csv.lineEnding"},
		"wrong-type":       {"mapping.columns", "sinks[0].csv.path"},
		"missing-required": {"name", "source.powerbi.dataset", "sinks[0].csv.path"},
		"auth-mismatch":    {"source.powerbi.cloud"},
		"bad-column-type":  {"mapping.columns[0].type", "mapping.columns[3].type"},
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("../testdata/config", name, "job.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			errs := schemaCheck(t, s, decodeYAML(t, data))
			for _, p := range want[name] {
				if !slices.ContainsFunc(errs, func(e string) bool { return strings.HasPrefix(e, p+": ") }) {
					t.Errorf("no schema error at %s; errors:\n%s", p, strings.Join(errs, "\n"))
				}
			}
		})
	}
}

// TestSchemaEnumsMatchLoader checks every list of values in jobRules
// against the loader: each value is accepted, and a value outside the list
// is refused, so the list is neither short nor made up.
func TestSchemaEnumsMatchLoader(t *testing.T) {
	powerbi := func(extra string) string {
		return "name: t\nsource:\n  powerbi: { workspace: w, dataset: d, query: EVALUATE T, " + extra + " }\nsinks: [ { csv: { path: a.csv } } ]\n"
	}
	storage := func(block string) string {
		return "name: t\nsource: { file: r.json }\nsinks: [ { csv: { path: 'az://exports/a.csv' } } ]\nstorage: { account: acct, " + block + " }\n"
	}
	auth := func(method string) string {
		switch method {
		case azure.MethodClientSecret:
			return "auth: { method: " + method + ", tenant: t, clientId: c, clientSecret: '${S}' }"
		case azure.MethodClientCertificate:
			return "auth: { method: " + method + ", tenant: t, clientId: c, certificate: c.pem }"
		}
		return "auth: { method: " + method + " }"
	}
	withSink := func(s string) string {
		return "name: t\nsource: { file: r.json }\nsinks: [ { " + s + " } ]\n"
	}
	jobFor := map[string]func(v string) string{
		"source.powerbi.cloud": func(v string) string {
			return powerbi("cloud: " + v + ", auth: { tenant: t, clientId: c, clientSecret: '${S}' }")
		},
		"source.powerbi.auth.method": func(v string) string { return powerbi(auth(v)) },
		"source.powerbi.sensitivityLabels": func(v string) string {
			return powerbi("sensitivityLabels: " + v + ", auth: { tenant: t, clientId: c, clientSecret: '${S}' }")
		},
		"source.powerbi.api": func(v string) string {
			return powerbi("api: " + v + ", auth: { tenant: t, clientId: c, clientSecret: '${S}' }")
		},
		"storage.cloud":       func(v string) string { return storage("cloud: " + v + ", auth: { method: managedIdentity }") },
		"storage.auth.method": func(v string) string { return storage(auth(v)) },
		"mapping.columns[].type": func(v string) string {
			return "name: t\nsource: { file: r.json }\nmapping: { columns: [ { from: '[a]', to: a, type: " + v + " } ] }\nsinks: [ { csv: { path: a.csv } } ]\n"
		},
		"mapping.unmapped": func(v string) string {
			return "name: t\nsource: { file: r.json }\nmapping: { columns: [ { from: '[a]', to: a, type: int64 } ], unmapped: " + v + " }\nsinks: [ { csv: { path: a.csv } } ]\n"
		},
		"sinks[].parquet.compression": func(v string) string { return withSink("parquet: { path: a.parquet, compression: " + v + " }") },
		"sinks[].csv.lineEnding":      func(v string) string { return withSink("csv: { path: a.csv, lineEnding: " + v + " }") },
		"sinks[].postgres.mode": func(v string) string {
			extra := map[string]string{"merge": ", key: [id]", "replacePartition": ", partitionColumn: day"}[v]
			return withSink("postgres: { table: t, mode: " + v + extra + " }")
		},
		"sinks[].postgres.schemaEvolution": func(v string) string {
			return withSink("postgres: { table: t, schemaEvolution: " + v + " }")
		},
	}
	// Parameter types are checked where they are parsed.
	checkedElsewhere := map[string]func(v string) error{
		"params.*.type": func(v string) error {
			sample := map[string]string{"date": "2024-03-01", "datetime": "2024-03-01T13:45:30Z", "int": "7"}[v]
			_, err := parseParam(v, cmpOr(sample, "x"), time.Now())
			return err
		},
	}
	for _, path := range slices.Sorted(maps.Keys(jobRules)) {
		r := jobRules[path]
		if len(r.enum) == 0 {
			continue
		}
		t.Run(path, func(t *testing.T) {
			if check, ok := checkedElsewhere[path]; ok {
				for _, v := range r.enum {
					if err := check(v); err != nil {
						t.Errorf("%s: %v", v, err)
					}
				}
				if check("no-such-value") == nil {
					t.Error("a value outside the list is accepted")
				}
				return
			}
			job, ok := jobFor[path]
			if !ok {
				t.Fatalf("no test job for the values of %s: add one to jobFor", path)
			}
			for _, v := range r.enum {
				if _, _, err := (Loader{LookupEnv: anyValue}).Load("enum.yaml", []byte(job(v))); err != nil {
					t.Errorf("the schema allows %s, the loader refuses it:\n%v", v, err)
				}
			}
			field := path[strings.LastIndexAny(path, ".]")+1:]
			_, _, err := (Loader{LookupEnv: anyValue}).Load("enum.yaml", []byte(job("no-such-value")))
			if err == nil || !strings.Contains(err.Error(), field) {
				t.Errorf("the loader does not refuse %s: no-such-value: %v", path, err)
			}
		})
	}
}

func TestSchemaCloudsAndMethods(t *testing.T) {
	if got, want := slices.Sorted(slices.Values(azure.CloudNames)), slices.Sorted(maps.Keys(azure.Clouds)); !slices.Equal(got, want) {
		t.Errorf("the schema's clouds %v are not azure.Clouds %v", got, want)
	}
	if got := jobRules["source.powerbi.auth.method"].enum; !slices.Equal(got, azure.Methods) {
		t.Errorf("the schema's methods %v are not azure.Methods %v", got, azure.Methods)
	}
}

// TestSchemaColumnTypes checks the column type rule against
// mapping.ParseType on the types a job may name.
func TestSchemaColumnTypes(t *testing.T) {
	s := loadSchema(t)
	col := s["properties"].(map[string]any)["mapping"].(map[string]any)["properties"].(map[string]any)["columns"].(map[string]any)["items"].(map[string]any)["properties"].(map[string]any)["type"].(map[string]any)
	for _, typ := range []string{"string", "int64", "float64", "bool", "date", "timestamp",
		"decimal(19,4)", "decimal( 38 , 0 )", "decimal (1,1)",
		"integer", "decimal", "decimal(10)", "decimal(a,b)", "decimal(19,4", "decimal(19;4)", "varchar", ""} {
		_, perr := mapping.ParseType(typ)
		serr := schemaCheck(t, col, typ)
		if (perr == nil) != (len(serr) == 0) {
			t.Errorf("type %q: ParseType says %v, the schema says %v", typ, perr, serr)
		}
	}
}

// TestSchemaEnvReferences checks that ${NAME} validates in the fields that
// commonly take it, including one limited to a list of values.
func TestSchemaEnvReferences(t *testing.T) {
	s := loadSchema(t)
	job := `name: env
source:
  powerbi:
    workspace: ${PBI_WORKSPACE_ID}
    dataset: ${PBI_DATASET_ID}
    query: EVALUATE Sales
    endpoint: ${PBI_ENDPOINT}
    cloud: ${PBI_CLOUD}
    auth: { tenant: "${AZURE_TENANT_ID}", clientId: "${PBI_CLIENT_ID}", clientSecret: "${PBI_CLIENT_SECRET}", authorityHost: "${PBI_AUTHORITY}" }
sinks:
  - postgres: { dsn: "${PG_DSN}", table: "${PG_TABLE}" }
  - csv: { path: "${OUT_DIR}/a.csv" }
storage: { account: lake1, cloud: "${STORAGE_CLOUD:-usgov}" }
`
	if _, _, err := (Loader{LookupEnv: anyValue}).Load("env.yaml", []byte(job)); err != nil {
		t.Fatal(err)
	}
	if errs := schemaCheck(t, s, decodeYAML(t, []byte(job))); len(errs) > 0 {
		t.Errorf("${NAME} references fail the schema:\n%s", strings.Join(errs, "\n"))
	}
}

func TestJobFilesPointAtTheSchema(t *testing.T) {
	files, err := filepath.Glob("../jobs/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example jobs: %v", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		first, _, _ := strings.Cut(string(data), "\n")
		if first != schemaModeline {
			t.Errorf("%s: the first line is %q, want %q", f, first, schemaModeline)
		}
		target := strings.TrimPrefix(schemaModeline, "# yaml-language-server: $schema=")
		if _, err := os.Stat(filepath.Join(filepath.Dir(f), target)); err != nil {
			t.Errorf("%s: the schema it names: %v", f, err)
		}
	}
}

// TestSchemaBuilder checks the generator on types the job does not (yet)
// have, and that it refuses what it cannot describe.
func TestSchemaBuilder(t *testing.T) {
	type item struct {
		N int `yaml:"n" doc:"A number."`
	}
	type withMaps struct {
		Labels map[string]string `yaml:"labels" doc:"Labels."`
		Items  map[string]*item  `yaml:"items" doc:"Items."`
	}
	b := &schemaBuilder{rules: map[string]fieldRule{"items.*.n": {required: true}}, used: map[string]bool{}}
	got, err := b.value(reflect.TypeFor[withMaps](), "")
	if err != nil {
		t.Fatal(err)
	}
	data, err := marshalSchema(got)
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	ok := map[string]any{"labels": map[string]any{"a": "x", "b": 2}, "items": map[string]any{"one": map[string]any{"n": 1}}}
	if errs := schemaCheck(t, s, ok); len(errs) > 0 {
		t.Errorf("valid maps refused: %v", errs)
	}
	bad := map[string]any{"labels": map[string]any{"a": []any{"x"}}, "items": map[string]any{"one": map[string]any{"m": 1}}}
	errs := schemaCheck(t, s, bad)
	for _, p := range []string{"labels.a", "items.one.m", "items.one.n"} {
		if !slices.ContainsFunc(errs, func(e string) bool { return strings.HasPrefix(e, p+": ") }) {
			t.Errorf("no error at %s: %v", p, errs)
		}
	}

	type undocumented struct {
		A string `yaml:"a"`
	}
	type node struct {
		Next *node `yaml:"next" doc:"Recursion."`
	}
	for name, tc := range map[string]struct {
		typ   reflect.Type
		rules map[string]fieldRule
		want  string
	}{
		"no doc tag":       {reflect.TypeFor[undocumented](), nil, "has no doc tag"},
		"recursive type":   {reflect.TypeFor[node](), nil, "contains itself"},
		"enum on integer":  {reflect.TypeFor[item](), map[string]fieldRule{"n": {enum: []string{"1"}}}, "does not apply"},
		"oneOf of nothing": {reflect.TypeFor[item](), map[string]fieldRule{"": {oneOf: []string{"m"}}}, "does not have"},
	} {
		b := &schemaBuilder{rules: tc.rules, used: map[string]bool{}}
		if _, err := b.value(tc.typ, ""); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", name, err, tc.want)
		}
	}
	b = &schemaBuilder{rules: map[string]fieldRule{"gone": {required: true}}, used: map[string]bool{}}
	if _, err := b.value(reflect.TypeFor[item](), ""); err != nil {
		t.Fatal(err)
	}
	if err := b.unusedRules(); err == nil || !strings.Contains(err.Error(), "gone") {
		t.Errorf("a rule for a missing field is not reported: %v", err)
	}
}
