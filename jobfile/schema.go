package jobfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/pbicopy/pbicopy/internal/spec"
	"github.com/pbicopy/pbicopy/sink"
	"github.com/pbicopy/pbicopy/source"
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

// envRefPattern matches a string holding a ${NAME} or ${NAME:-default}
// reference.
const envRefPattern = `\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}`

// objectRules are the rules of objects the tags of their fields cannot say:
// which fields exclude each other, which need each other. The types'
// Validate methods check them; the schema and the reference state them.
var objectRules = map[reflect.Type]fieldRule{
	reflect.TypeFor[source.Spec](): {exactlyOne: true},
	reflect.TypeFor[sink.Spec]():   {exactlyOne: true},
	reflect.TypeFor[source.PowerBISpec](): {oneOf: []string{"query", "table"},
		needs: map[string][]string{"table": {"paging"}, "paging": {"table"}}},
}

// jobRules are the field rules of Job, keyed by field path, with [] for the
// items of a list and * for the values of a map (sinks[].parquet.compression,
// params.*.type): what the fields' tags declare (package spec), and the
// objectRules of the objects they hold.
var jobRules = collectRules(reflect.TypeFor[Job]())

func collectRules(root reflect.Type) map[string]fieldRule {
	rules := map[string]fieldRule{}
	var walk func(t reflect.Type, path string)
	walk = func(t reflect.Type, path string) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Slice:
			walk(t.Elem(), path+"[]")
			return
		case reflect.Map:
			walk(t.Elem(), path+".*")
			return
		case reflect.Struct:
		default:
			return
		}
		if or, ok := objectRules[t]; ok {
			r := rules[path]
			r.exactlyOne, r.oneOf, r.needs = or.exactlyOne, or.oneOf, or.needs
			rules[path] = r
		}
		for _, f := range spec.Fields(t) {
			fp := join(path, spec.Name(f))
			if r := tagRule(f); !r.empty() {
				rules[fp] = r
			}
			walk(f.Type, fp)
		}
	}
	walk(root, "")
	return rules
}

// tagRule is the rule the tags of a field declare.
func tagRule(f reflect.StructField) fieldRule {
	sr := spec.RuleOf(f)
	r := fieldRule{required: sr.Required != "", enum: sr.Enum, pattern: sr.Pattern, patternNote: sr.PatternDoc,
		env: sr.Env, maxLength: sr.MaxLength, keyPattern: sr.Keys, keyPatternNote: sr.KeysDoc, minItems: sr.MinItems,
		minimum: sr.Min, maximum: sr.Max, defNote: sr.DefaultDoc}
	if sr.Default != "" {
		t := f.Type
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Bool:
			r.def = sr.Default == "true"
		case reflect.Int, reflect.Int64:
			n, _ := strconv.ParseInt(sr.Default, 10, 64)
			r.def = n
		default:
			r.def = sr.Default
		}
	}
	return r
}

func (r fieldRule) empty() bool {
	return !r.required && len(r.enum) == 0 && r.pattern == "" && !r.env && r.maxLength == 0 && r.keyPattern == "" &&
		r.minItems == 0 && r.minimum == nil && r.maximum == nil && r.def == nil && r.defNote == ""
}

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
