package jobfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/pbicopy/pbicopy/internal/azure"

	"github.com/pbicopy/pbicopy/sink"
)

// SchemaDialect is the JSON Schema draft of JSONSchema: draft-07, the one
// the YAML language server (the VS Code YAML extension) validates with.
const SchemaDialect = "http://json-schema.org/draft-07/schema#"

// fieldRule is what the Go types of a job file cannot say about one field:
// the checks of the loader's validation that a JSON Schema can express, and
// the defaults the documentation states. JSONSchema and Reference both read
// it, keyed by field path, with [] for the items of a list and * for the
// values of a map (sinks[].parquet.compression, params.*.type).
type fieldRule struct {
	required bool // the object holding the field must give it

	// Rules of an object: exactly one of its fields (exactlyOne) or of the
	// fields named (oneOf) must be given; needs lists, for a field, the
	// fields that must be given with it.
	exactlyOne bool
	oneOf      []string
	needs      map[string][]string

	// Rules of a string. enum lists the values it may take; pattern is a
	// regular expression (ECMA-262 and RE2 alike) it must match, or, with
	// enum, one the values outside the list may match instead; env lets an
	// enum field hold a ${NAME} reference, which the loader expands before
	// checking.
	enum        []string
	pattern     string
	patternNote string // how the reference describes pattern
	env         bool
	maxLength   int

	keyPattern, keyPatternNote string // a regular expression map keys match
	minItems                   int    // of a list
	minimum, maximum           *int64 // of an integer

	def     any    // the default, when it is a value of the field
	defNote string // the default in words, when it is not
}

// cloudNames are the values of a cloud field.
var cloudNames = azure.CloudNames

// envRefPattern matches a string holding a ${NAME} reference.
const envRefPattern = `\$\{[A-Za-z_][A-Za-z0-9_]*\}`

// jobRules are the field rules of Job. JSONSchema fails on a rule for a
// field that does not exist, so a renamed field cannot leave one behind.
var jobRules = map[string]fieldRule{
	"name": {required: true, pattern: jobNameRE.String(), maxLength: 63,
		patternNote: "lowercase letters, digits and -, starting with a letter or digit; at most 63 characters"},

	"source":                         {required: true, exactlyOne: true},
	"source.powerbi":                 {oneOf: []string{"query", "table"}, needs: map[string][]string{"table": {"paging"}, "paging": {"table"}}},
	"source.powerbi.workspace":       {required: true},
	"source.powerbi.dataset":         {required: true},
	"source.powerbi.paging.key":      {required: true},
	"source.powerbi.paging.pageRows": {def: "auto"},
	"source.powerbi.endpoint":        {defNote: "the cloud's (https://api.powerbi.com)"},
	// A job run in several clouds may take its cloud from the environment.
	"source.powerbi.cloud":              {enum: cloudNames, env: true, def: "public"},
	"source.powerbi.auth":               {required: true},
	"source.powerbi.auth.method":        {enum: azure.Methods, defNote: "clientSecret when a secret is given, clientCertificate when a certificate is"},
	"source.powerbi.auth.tokenFile":     {defNote: "AZURE_FEDERATED_TOKEN_FILE"},
	"source.powerbi.auth.authorityHost": {defNote: "AZURE_AUTHORITY_HOST, else the cloud's"},

	"mapping":                {defNote: "columns inferred from the data"},
	"mapping.columns":        {required: true, minItems: 1},
	"mapping.columns[].from": {required: true},
	"mapping.columns[].to":   {required: true},
	"mapping.columns[].type": {required: true, enum: []string{"string", "int64", "float64", "bool", "date", "timestamp"},
		pattern: `^decimal *\( *[0-9]+ *, *[0-9]+ *\)$`, patternNote: "decimal(P,S): precision 1 to 38, scale 0 to P"},
	"mapping.unmapped": {enum: []string{"error", "ignore"}, def: "error"},

	"sinks":                            {required: true, minItems: 1},
	"sinks[]":                          {exactlyOne: true},
	"sinks[].parquet.path":             {required: true},
	"sinks[].parquet.compression":      {enum: []string{"snappy", "zstd", "gzip", "none"}, def: "snappy"},
	"sinks[].parquet.rowGroupBytes":    {minimum: ptrTo(int64(0)), maximum: ptrTo(sink.MaxRowGroupBytes), def: sink.DefaultRowGroupBytes},
	"sinks[].parquet.overwrite":        {def: true},
	"sinks[].csv.path":                 {required: true},
	"sinks[].csv.lineEnding":           {enum: []string{"lf", "crlf"}, def: "lf"},
	"sinks[].csv.header":               {def: true},
	"sinks[].csv.overwrite":            {def: true},
	"sinks[].postgres.dsn":             {defNote: "the PG* environment variables"},
	"sinks[].postgres.table":           {required: true},
	"sinks[].postgres.mode":            {enum: []string{"append", "replace", "merge", "replacePartition"}, def: "append"},
	"sinks[].postgres.createTable":     {def: true},
	"sinks[].postgres.schemaEvolution": {enum: []string{"addColumns"}, defNote: "none: a mapped column missing from the table is an error"},
	"sinks[].postgres.stripNul":        {def: false},

	"params":          {keyPattern: paramNameRE.String(), keyPatternNote: "names of letters, digits and _, not starting with a digit"},
	"params.*.type":   {required: true, enum: []string{"date", "int", "string"}},
	"partition.param": {required: true},
	"partition.step":  {required: true},

	"sinks[].parquet.maxRowsPerFile":  {minimum: ptrTo(int64(0)), def: 0},
	"sinks[].parquet.maxBytesPerFile": {minimum: ptrTo(int64(0)), def: 0},
	"sinks[].csv.maxRowsPerFile":      {minimum: ptrTo(int64(0)), def: 0},
	"sinks[].csv.maxBytesPerFile":     {minimum: ptrTo(int64(0)), def: 0},
	"storage.account":                 {defNote: "the connection string's account, else AZURE_STORAGE_ACCOUNT"},
	"storage.connectionString":        {defNote: "AZURE_STORAGE_CONNECTION_STRING, when no other credential is set"},
	"storage.auth":                    {defNote: "source.powerbi.auth"},
	"storage.auth.method":             {enum: azure.Methods, defNote: "as for source.powerbi.auth.method"},
	"storage.cloud":                   {enum: cloudNames, env: true, defNote: "source.powerbi.cloud"},
	"storage.blockSize":               {minimum: ptrTo(int64(0)), maximum: ptrTo(sink.MaxBlockSize), def: sink.DefaultBlockSize},
	"storage.concurrency":             {minimum: ptrTo(int64(0)), maximum: ptrTo(int64(sink.MaxBlobConcurrency)), def: sink.DefaultBlobConcurrency},
}

func ptrTo[T any](v T) *T { return &v }

// JSONSchema returns the JSON Schema (draft-07) of job files, generated from
// the Go types: their yaml tags name the properties, their doc tags describe
// them, and jobRules adds what types cannot say. Objects allow no other
// properties, as the loader does. A string field takes any scalar, as the
// loader does, and so any ${NAME} reference, unless it is limited to a list
// of values or a pattern. The schema accepts some jobs the loader refuses
// (it cannot express every rule: the fields each auth method needs, unique
// column names, templates), never the other way round. The output is
// deterministic: properties in struct order, rules in a fixed order.
func JSONSchema() ([]byte, error) {
	b := &schemaBuilder{rules: jobRules, used: map[string]bool{}}
	root, err := b.value(reflect.TypeFor[Job](), "")
	if err != nil {
		return nil, err
	}
	if err := b.unusedRules(); err != nil {
		return nil, err
	}
	doc := schemaObject{
		{"$schema", SchemaDialect},
		{"title", "pbicopy job file"},
		{"description", "A pbicopy job: a DAX query on a Power BI semantic model and the sinks its rows are copied to. Generated from the Go types by jobfile.JSONSchema; do not edit."},
	}
	return marshalSchema(append(doc, root...))
}

// schemaBuilder turns Go types into JSON Schema objects.
type schemaBuilder struct {
	rules map[string]fieldRule
	used  map[string]bool
	stack []reflect.Type // the struct types being expanded
}

func (b *schemaBuilder) rule(path string) fieldRule {
	r, ok := b.rules[path]
	if ok {
		b.used[path] = true
	}
	return r
}

func (b *schemaBuilder) unusedRules() error {
	var stale []string
	for p := range b.rules {
		if !b.used[p] {
			stale = append(stale, p)
		}
	}
	if len(stale) > 0 {
		slices.Sort(stale)
		return fmt.Errorf("schema: rules for fields that do not exist: %s", strings.Join(stale, ", "))
	}
	return nil
}

// value returns the schema of a value of type t found at path.
func (b *schemaBuilder) value(t reflect.Type, path string) (schemaObject, error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var s schemaObject
	switch t.Kind() {
	case reflect.String:
		// The loader takes the text of any scalar: pageRows: 5000 is as
		// good as pageRows: "5000".
		s = schemaObject{{"type", []string{"string", "number", "boolean"}}}
	case reflect.Bool:
		s = schemaObject{{"type", "boolean"}}
	case reflect.Int, reflect.Int64:
		s = schemaObject{{"type", "integer"}}
	case reflect.Slice:
		items, err := b.value(t.Elem(), path+"[]")
		if err != nil {
			return nil, err
		}
		s = schemaObject{{"type", "array"}, {"items", items}}
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return nil, fmt.Errorf("schema: %s: map keys must be strings, not %s", path, t.Key())
		}
		elem, err := b.value(t.Elem(), path+".*")
		if err != nil {
			return nil, err
		}
		s = schemaObject{{"type", "object"}, {"additionalProperties", elem}}
	case reflect.Struct:
		var err error
		if s, err = b.object(t, path); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("schema: %s: the loader cannot decode %s", path, t)
	}
	return b.applyRule(s, t, path)
}

// object returns the schema of a struct: its yaml-tagged fields, in order.
func (b *schemaBuilder) object(t reflect.Type, path string) (schemaObject, error) {
	if slices.Contains(b.stack, t) {
		return nil, fmt.Errorf("schema: %s: %s contains itself", path, t)
	}
	b.stack = append(b.stack, t)
	defer func() { b.stack = b.stack[:len(b.stack)-1] }()

	var props schemaObject
	var required []string
	for _, f := range specFields(t) {
		fp := join(path, f.name)
		if f.doc == "" {
			return nil, fmt.Errorf("schema: %s (%s.%s) has no doc tag", fp, t, f.goName)
		}
		v, err := b.value(f.typ, fp)
		if err != nil {
			return nil, err
		}
		props = append(props, schemaMember{f.name, append(schemaObject{{"description", f.doc}}, v...)})
		if b.rule(fp).required {
			required = append(required, f.name)
		}
	}
	s := schemaObject{{"type", "object"}, {"properties", props}}
	if len(required) > 0 {
		s = append(s, schemaMember{"required", required})
	}
	return append(s, schemaMember{"additionalProperties", false}), nil
}

// applyRule adds the rule of path to s, the schema of a value of type t.
func (b *schemaBuilder) applyRule(s schemaObject, t reflect.Type, path string) (schemaObject, error) {
	if _, ok := b.rules[path]; !ok {
		return s, nil
	}
	r := b.rule(path)
	bad := func(what string) error { return fmt.Errorf("schema: %s: %s does not apply to %s", path, what, t) }
	kind := t.Kind()
	if (len(r.enum) > 0 || r.pattern != "" || r.maxLength > 0 || r.env) && kind != reflect.String {
		return nil, bad("a string rule")
	}
	if r.env && len(r.enum) == 0 {
		return nil, bad("env without enum")
	}
	if (r.minimum != nil || r.maximum != nil) && kind != reflect.Int && kind != reflect.Int64 {
		return nil, bad("a range")
	}
	if r.minItems > 0 && kind != reflect.Slice {
		return nil, bad("minItems")
	}
	if r.keyPattern != "" && kind != reflect.Map {
		return nil, bad("keyPattern")
	}
	if r.keyPattern != "" {
		s = append(s, schemaMember{"propertyNames", schemaObject{{"pattern", r.keyPattern}}})
	}
	if len(r.needs) > 0 {
		if kind != reflect.Struct {
			return nil, bad("needs")
		}
		var deps schemaObject
		for _, f := range specFields(t) {
			needed, ok := r.needs[f.name]
			if !ok {
				continue
			}
			for _, n := range needed {
				if !slices.ContainsFunc(specFields(t), func(g specField) bool { return g.name == n }) {
					return nil, fmt.Errorf("schema: %s: %s needs %s, which %s does not have", path, f.name, n, t)
				}
			}
			deps = append(deps, schemaMember{f.name, needed})
		}
		if len(deps) != len(r.needs) {
			return nil, fmt.Errorf("schema: %s: needs names a field %s does not have", path, t)
		}
		s = slices.Insert(s, len(s)-1, schemaMember{"dependencies", deps})
	}
	if r.exactlyOne || len(r.oneOf) > 0 {
		if kind != reflect.Struct {
			return nil, bad("exactlyOne and oneOf")
		}
		names, err := oneOfFields(t, r)
		if err != nil {
			return nil, fmt.Errorf("schema: %s: %w", path, err)
		}
		var alts []any
		for _, n := range names {
			alts = append(alts, schemaObject{{"required", []string{n}}})
		}
		// Before additionalProperties, which object() put last.
		s = slices.Insert(s, len(s)-1, schemaMember{"oneOf", alts})
	}
	switch {
	case len(r.enum) > 0 && (r.pattern != "" || r.env):
		alts := []any{schemaObject{{"enum", r.enum}}}
		if r.pattern != "" {
			alts = append(alts, schemaObject{{"pattern", r.pattern}})
		}
		if r.env {
			alts = append(alts, schemaObject{{"pattern", envRefPattern}})
		}
		s = append(s, schemaMember{"anyOf", alts})
	case len(r.enum) > 0:
		s = append(s, schemaMember{"enum", r.enum})
	case r.pattern != "":
		s = append(s, schemaMember{"pattern", r.pattern})
	}
	if r.maxLength > 0 {
		s = append(s, schemaMember{"maxLength", r.maxLength})
	}
	if r.minimum != nil {
		s = append(s, schemaMember{"minimum", *r.minimum})
	}
	if r.maximum != nil {
		s = append(s, schemaMember{"maximum", *r.maximum})
	}
	if r.minItems > 0 {
		s = append(s, schemaMember{"minItems", r.minItems})
	}
	if r.def != nil {
		if !ruleDefaultFits(r.def, kind) {
			return nil, fmt.Errorf("schema: %s: default %v is not a %s", path, r.def, t)
		}
		s = append(s, schemaMember{"default", r.def})
	}
	return s, nil
}

// oneOfFields lists the fields of which an object of type t must hold
// exactly one, by rule r.
func oneOfFields(t reflect.Type, r fieldRule) ([]string, error) {
	var all []string
	for _, f := range specFields(t) {
		all = append(all, f.name)
	}
	if r.exactlyOne {
		return all, nil
	}
	for _, n := range r.oneOf {
		if !slices.Contains(all, n) {
			return nil, fmt.Errorf("oneOf names %q, which %s does not have", n, t)
		}
	}
	return slices.Clone(r.oneOf), nil
}

func ruleDefaultFits(v any, k reflect.Kind) bool {
	switch v.(type) {
	case string:
		return k == reflect.String
	case bool:
		return k == reflect.Bool
	case int, int64:
		return k == reflect.Int || k == reflect.Int64
	}
	return false
}

// specField is one yaml-tagged field of a struct type.
type specField struct {
	name, goName, doc string
	typ               reflect.Type
}

// specFields lists the fields of t the loader decodes, in order.
func specFields(t reflect.Type) []specField {
	names, index := yamlFields(t)
	out := make([]specField, len(names))
	for i, n := range names {
		f := t.Field(index[n])
		out[i] = specField{name: n, goName: f.Name, doc: f.Tag.Get("doc"), typ: f.Type}
	}
	return out
}

// schemaObject is a JSON object that keeps its members in order.
type schemaObject []schemaMember

type schemaMember struct {
	key   string
	value any
}

// marshalSchema writes v as indented JSON, without escaping <, > and &
// (descriptions hold them), ending with a newline.
func marshalSchema(v any) ([]byte, error) {
	var compact bytes.Buffer
	if err := writeSchemaJSON(&compact, v); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, compact.Bytes(), "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

func writeSchemaJSON(b *bytes.Buffer, v any) error {
	switch v := v.(type) {
	case schemaObject:
		b.WriteByte('{')
		for i, m := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeSchemaJSON(b, m.key); err != nil {
				return err
			}
			b.WriteByte(':')
			if err := writeSchemaJSON(b, m.value); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeSchemaJSON(b, e); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case string, []string, bool, int, int64:
		enc := json.NewEncoder(b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return err
		}
		b.Truncate(b.Len() - 1) // Encode's newline
	default:
		return errors.New("schema: cannot write a " + reflect.TypeOf(v).String())
	}
	return nil
}
