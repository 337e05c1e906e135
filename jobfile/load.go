package jobfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/pbicopy/pbicopy/internal/smallfile"
)

// Severity says what a Problem does to a job.
type Severity uint8

const (
	// SeverityError makes the job invalid.
	SeverityError Severity = iota
	// SeverityWarning is worth a look; the job stays valid.
	SeverityWarning
	// SeverityNote says what could not be checked: a value whose
	// environment variable is unset, under Loader.SkipEnv.
	SeverityNote
)

func (s Severity) String() string {
	switch s {
	case SeverityWarning:
		return "warning"
	case SeverityNote:
		return "note"
	}
	return "error"
}

// Problem is one thing wrong in a job file, or, with a Severity other than
// SeverityError, worth a look or left unchecked.
type Problem struct {
	File     string
	Line     int    // 1-based; 0 when unknown
	Path     string // field path, e.g. sinks[0].parquet.compression
	Message  string
	Severity Severity
}

// String writes the problem as file:line: path: message, with warning: or
// note: before the path for those.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	b.WriteString(": ")
	if p.Severity != SeverityError {
		b.WriteString(p.Severity.String())
		b.WriteString(": ")
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// InvalidError lists every problem that makes one or more job files invalid.
type InvalidError struct {
	Problems []Problem // errors only
}

func (e *InvalidError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// lineIndex maps field paths to the line they were written on.
type lineIndex map[string]int

// lineOf returns the line of path, or of its nearest parent that has one.
func (l lineIndex) lineOf(path string) int {
	for {
		if n, ok := l[path]; ok {
			return n
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return l[""]
		}
		path = path[:i]
	}
}

// LookupEnv finds environment variables for ${NAME} expansion. Tests replace
// it; it defaults to os.LookupEnv.
type LookupEnv func(name string) (string, bool)

// Loader loads job files.
type Loader struct {
	LookupEnv LookupEnv // nil means os.LookupEnv

	// SkipEnv checks a job's structure without its environment (pbicopy
	// validate --skip-env, for authoring without secrets): a ${NAME}
	// whose variable is unset is a note (SeverityNote), not an error, and
	// the value counts as given for the rules that only need one (a
	// required secret is present). The value itself, which holds the
	// ${NAME} reference as written, is not checked. A job loaded with
	// SkipEnv is for checking only: never run it.
	SkipEnv bool
}

// LoadPaths loads every job named by paths: files, or folders whose *.yaml
// and *.yml files are taken in name order. A job file must be a regular
// file of at most 1 MiB (smallfile.JobFile). It returns the jobs and the
// problems that leave them valid (warnings and notes); if any job is
// invalid, the error is an *InvalidError listing the errors of every file,
// and no job is returned.
func (l Loader) LoadPaths(paths []string) ([]*Job, []Problem, error) {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, nil, &InvalidError{Problems: []Problem{{File: p, Message: "cannot read: " + errText(err)}}}
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		var found []string
		for _, pat := range []string{"*.yaml", "*.yml"} {
			m, _ := filepath.Glob(filepath.Join(p, pat))
			found = append(found, m...)
		}
		slices.Sort(found)
		if len(found) == 0 {
			return nil, nil, &InvalidError{Problems: []Problem{{File: p, Message: "the folder has no *.yaml job files"}}}
		}
		files = append(files, found...)
	}
	var jobs []*Job
	var warnings, problems []Problem
	names := map[string]string{}
	for _, f := range files {
		data, err := smallfile.Read(f, smallfile.JobFile)
		if err != nil {
			problems = append(problems, Problem{File: f, Message: "cannot read: " + errText(err)})
			continue
		}
		job, ws, err := l.Load(f, data)
		warnings = append(warnings, ws...)
		var inv *InvalidError
		if errors.As(err, &inv) {
			problems = append(problems, inv.Problems...)
			continue
		}
		if job.unset["name"] {
			jobs = append(jobs, job) // its name is not known
			continue
		}
		if prev, dup := names[job.Name]; dup {
			problems = append(problems, Problem{File: f, Line: job.lines.lineOf("name"), Path: "name",
				Message: fmt.Sprintf("job name %q is already used by %s: names must be unique (they key logs and state)", job.Name, prev)})
			continue
		}
		names[job.Name] = f
		jobs = append(jobs, job)
	}
	if len(problems) > 0 {
		return nil, warnings, &InvalidError{Problems: problems}
	}
	return jobs, warnings, nil
}

func errText(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// Load decodes and validates one job file. file names it in messages. It
// returns the job and the problems that leave it valid (warnings and
// notes), or an *InvalidError listing its errors.
func (l Loader) Load(file string, data []byte) (*Job, []Problem, error) {
	d := &decoder{file: file, lines: lineIndex{}, literal: map[string]bool{}, unset: map[string]bool{}, lookup: l.LookupEnv, skipEnv: l.SkipEnv}
	if d.lookup == nil {
		d.lookup = os.LookupEnv
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF) || err == nil && len(doc.Content) == 0:
		return nil, nil, &InvalidError{Problems: []Problem{{File: file, Line: 1, Message: "the file is empty: a job needs name, source and sinks"}}}
	case err != nil:
		return nil, nil, &InvalidError{Problems: []Problem{yamlSyntaxProblem(file, data, err)}}
	}
	// A second document (after ---) would be ignored: refuse it, and still
	// check the first.
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		d.problems = append(d.problems, yamlSyntaxProblem(file, data, err))
	default:
		d.errorf(next.Line, "", "a second YAML document starts here (after ---): a job file holds one job; put each job in a file of its own")
	}
	job := &Job{File: file, lines: d.lines, unset: d.unset}
	d.decode(doc.Content[0], reflect.ValueOf(job).Elem(), "")
	d.validate(job)
	slices.SortStableFunc(d.problems, func(a, b Problem) int { return a.Line - b.Line })
	var errs, warns []Problem
	for _, p := range d.problems {
		if p.Severity == SeverityError {
			errs = append(errs, p)
		} else {
			warns = append(warns, p)
		}
	}
	if len(errs) > 0 {
		return nil, warns, &InvalidError{Problems: errs}
	}
	return job, warns, nil
}

// yamlSyntaxProblem turns a yaml.v3 error ("yaml: line 3: ...") into a
// Problem with its line. yaml.v3 leaves the line out of an error on the
// first line, and of the errors of its reader (bad UTF-8, control
// characters), which give no position: the line of the first character
// the reader refuses is found here.
func yamlSyntaxProblem(file string, data []byte, err error) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	p := Problem{File: file, Line: 1, Message: "not valid YAML: " + msg}
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if i := strings.IndexByte(rest, ':'); i > 0 {
			if n, err := strconv.Atoi(rest[:i]); err == nil {
				p.Line, p.Message = n, "not valid YAML: "+strings.TrimSpace(rest[i+1:])
			}
		}
		return p
	}
	if off, r := refusedChar(data); off >= 0 {
		p.Line = yamlLine(data, off)
		if r >= 0 {
			p.Message = fmt.Sprintf("not valid YAML: the character %U is not allowed (control characters cannot be written in YAML)", r)
		} else {
			p.Message = "not valid YAML: the file is not UTF-8 text"
		}
	}
	return p
}

// refusedChar finds the first character YAML's reader refuses in data: a
// byte that is not UTF-8 (r is then -1), or a character outside YAML's
// printable set (tab, line feed, carriage return, NEL and the printable
// characters of Unicode). off is -1 if there is none.
func refusedChar(data []byte) (off int, r rune) {
	data, bom := bytes.CutPrefix(data, []byte("\xef\xbb\xbf"))
	shift := 0
	if bom {
		shift = 3
	}
	for i := 0; i < len(data); {
		r, w := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && w <= 1:
			return shift + i, -1
		case r == 0x09 || r == 0x0A || r == 0x0D || r == 0x85,
			r >= 0x20 && r <= 0x7E, r >= 0xA0 && r <= 0xD7FF, r >= 0xE000 && r <= 0xFFFD, r >= 0x10000:
		default:
			return shift + i, r
		}
		i += w
	}
	return -1, 0
}

// yamlLine is the 1-based line of byte off in data, counting line breaks
// as YAML does: LF, CR, CR LF, NEL, and the Unicode line and paragraph
// separators.
func yamlLine(data []byte, off int) int {
	line := 1
	for i := 0; i < off && i < len(data); {
		r, w := utf8.DecodeRune(data[i:])
		switch {
		case r == '\r' && i+1 < len(data) && data[i+1] == '\n':
			w = 2
			line++
		case r == '\n', r == '\r', r == 0x85, r == 0x2028, r == 0x2029:
			line++
		}
		i += w
	}
	return line
}

type decoder struct {
	file     string
	problems []Problem
	lines    lineIndex
	literal  map[string]bool // string fields written without any ${...}
	reported map[string]bool // paths with a problem already (set by validate)
	lookup   LookupEnv
	// unset holds the paths of values with an unset variable: they hold
	// the ${NAME} as written, which counts as given, and no other problem
	// is reported at them (their value is unknown).
	unset   map[string]bool
	skipEnv bool

	// aliasDepth counts the aliases (*name) being expanded; aliasValues
	// the values decoded through one, against maxAliasValues.
	aliasDepth, aliasValues int
	aliasBomb               bool // reported
}

// maxAliasValues bounds the values decoded through aliases (*name) in one
// file. yaml.v3 checks aliasing only when it decodes into Go values, not
// into the yaml.Node the loader reads, so a few KiB of nested aliases
// would otherwise expand to billions of values ("billion laughs"). A job
// file reuses a block a few times at most (an auth block, say).
const maxAliasValues = 10_000

func (d *decoder) errorf(line int, path, format string, args ...any) {
	d.add(SeverityError, line, path, format, args...)
}

func (d *decoder) warnf(line int, path, format string, args ...any) {
	d.add(SeverityWarning, line, path, format, args...)
}

// add records a problem, unless the value at path holds an unset
// variable, whose one problem is recorded already.
func (d *decoder) add(sev Severity, line int, path, format string, args ...any) {
	if d.unset[path] {
		return
	}
	d.problems = append(d.problems, Problem{File: d.file, Line: line, Path: path, Message: fmt.Sprintf(format, args...), Severity: sev})
	if d.reported != nil && sev == SeverityError {
		d.reported[path] = true
	}
}

// unsetEnv records the one problem of a value whose variables are unset:
// an error, or a note under SkipEnv.
func (d *decoder) unsetEnv(line int, path string, names []string) {
	sev, msg := SeverityError, "environment variable "+names[0]+" is not set"
	if len(names) > 1 {
		msg = "environment variables " + strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1] + " are not set"
	}
	if d.skipEnv {
		sev, msg = SeverityNote, msg+": the value is not checked"
	}
	d.add(sev, line, path, "%s", msg)
	d.unset[path] = true
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return fmt.Sprintf("the value %q", n.Value)
	}
	return "something else"
}

// yamlFields lists the yaml-tagged fields of a struct type. The caller
// must not modify what it returns.
func yamlFields(t reflect.Type) (names []string, index map[string]int) {
	if f, ok := fieldsByType.Load(t); ok {
		f := f.(structFields)
		return f.names, f.index
	}
	names, index = readYAMLFields(t)
	fieldsByType.Store(t, structFields{names, index})
	return names, index
}

type structFields struct {
	names []string
	index map[string]int
}

// fieldsByType caches yamlFields: a struct is decoded once per mapping
// of the file.
var fieldsByType sync.Map // reflect.Type -> structFields

func readYAMLFields(t reflect.Type) (names []string, index map[string]int) {
	index = map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == "" || tag == "-" || !f.IsExported() {
			continue
		}
		names = append(names, tag)
		index[tag] = i
	}
	return names, index
}

// decode stores n into v (strictly), recording lines and problems.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode {
		if d.aliasValues >= maxAliasValues {
			if !d.aliasBomb {
				d.errorf(n.Line, path, "the aliases of this file (*%s and others) expand to more than %d values: reuse a block a few times at most, and write the rest out", n.Value, maxAliasValues)
				d.aliasBomb = true
			}
			return
		}
		d.aliasDepth++
		defer func() { d.aliasDepth-- }()
		n = n.Alias
	}
	if d.aliasDepth > 0 {
		d.aliasValues++
	}
	d.lines[path] = n.Line
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" && v.Kind() != reflect.String {
		return // an explicit null leaves the zero value
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.errorf(n.Line, path, "expected a mapping of fields, found %s", nodeKind(n))
			return
		}
		names, index := yamlFields(v.Type())
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			fp := join(path, k.Value)
			if seen[k.Value] {
				d.errorf(k.Line, fp, "the field is given twice")
				continue
			}
			seen[k.Value] = true
			fi, ok := index[k.Value]
			if !ok {
				d.errorf(k.Line, fp, "unknown field %q%s", k.Value, suggest(k.Value, names))
				continue
			}
			d.lines[fp] = k.Line
			d.decode(val, v.Field(fi), fp)
			d.lines[fp] = k.Line
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n.Line, path, "expected a list, found %s", nodeKind(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, e := range n.Content {
			d.decode(e, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.errorf(n.Line, path, "expected a mapping, found %s", nodeKind(n))
			return
		}
		m := reflect.MakeMap(v.Type())
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			fp := join(path, k.Value)
			if m.MapIndex(reflect.ValueOf(k.Value)).IsValid() {
				d.errorf(k.Line, fp, "the key is given twice")
				continue
			}
			e := reflect.New(v.Type().Elem()).Elem()
			d.decode(val, e, fp)
			d.lines[fp] = k.Line
			m.SetMapIndex(reflect.ValueOf(k.Value), e)
		}
		v.Set(m)
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int64:
		if n.Kind != yaml.ScalarNode {
			d.errorf(n.Line, path, "expected a single value, found %s", nodeKind(n))
			return
		}
		s := n.Value
		if n.Tag == "!!null" {
			s = ""
		}
		expanded, usedEnv, unset, err := expandEnv(s, d.lookup)
		if err != nil {
			d.errorf(n.Line, path, "%v", err)
			return
		}
		if len(unset) > 0 {
			d.unsetEnv(n.Line, path, unset)
		}
		d.literal[path] = !usedEnv && len(unset) == 0 && expanded != ""
		d.setScalar(n, v, path, expanded)
	default:
		panic(fmt.Sprintf("jobfile: cannot decode into %s", v.Type()))
	}
}

func (d *decoder) setScalar(n *yaml.Node, v reflect.Value, path, s string) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		switch s {
		case "true":
			v.SetBool(true)
		case "false":
			v.SetBool(false)
		default:
			d.errorf(n.Line, path, "expected true or false, found %q", s)
		}
	case reflect.Int, reflect.Int64:
		i, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 10, 64)
		if err != nil {
			d.errorf(n.Line, path, "expected a whole number, found %q", s)
			return
		}
		v.SetInt(i)
	}
}

// expandEnv replaces ${NAME} with the value of the environment variable
// NAME, and ${NAME:-default} with it or, when NAME is unset or empty, with
// default (which may not hold } or ${); $${ stands for a literal ${. used
// is true if a variable gave part of the value. unset lists the variables
// of ${NAME} references (without a default) that are not set, each once:
// those references stay in out as written.
func expandEnv(s string, lookup LookupEnv) (out string, used bool, unset []string, err error) {
	if !strings.Contains(s, "${") {
		return s, false, nil, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			b.WriteString("${")
			i += 3
		case strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return "", false, nil, errors.New("unclosed ${ : write ${NAME}, or $${ for a literal ${")
			}
			ref := s[i : i+end+1]
			name, def, hasDefault := strings.Cut(ref[2:len(ref)-1], ":-")
			if !validEnvName(name) {
				return "", false, nil, fmt.Errorf("%s is not a valid environment variable reference: write ${NAME} or ${NAME:-default}, with a name of letters, digits and _", ref)
			}
			if strings.Contains(def, "${") {
				return "", false, nil, fmt.Errorf("%s: a default cannot hold another ${...}", ref)
			}
			val, ok := lookup(name)
			switch {
			case hasDefault && val == "":
				b.WriteString(def)
			case ok:
				b.WriteString(val)
				used = true
			default:
				b.WriteString(ref)
				if !slices.Contains(unset, name) {
					unset = append(unset, name)
				}
			}
			i += end + 1
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String(), used, unset, nil
}

func validEnvName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// suggest proposes the closest known name for a misspelled field.
func suggest(name string, known []string) string {
	best, bestDist := "", 4
	for _, k := range known {
		if strings.EqualFold(k, name) {
			return fmt.Sprintf(": did you mean %q?", k)
		}
		if dist := levenshtein(strings.ToLower(name), strings.ToLower(k)); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if best != "" {
		return fmt.Sprintf(": did you mean %q?", best)
	}
	return "; known fields: " + strings.Join(known, ", ")
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
