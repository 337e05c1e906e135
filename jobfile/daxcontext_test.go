package jobfile

import (
	"strings"
	"testing"
	"time"
)

// TestQueryTemplateContexts checks where a query template's actions may
// stand: in code, apart from words and strings, on every path through its
// branches.
func TestQueryTemplateContexts(t *testing.T) {
	for _, c := range []struct{ tmpl, err string }{
		// Code: accepted.
		{`EVALUATE FILTER(Small, Small[Name] = "pre" & {{ dax .nm }})`, ""},
		{"EVALUATE Sales // a comment\nORDER BY Sales[Key] = {{ dax .x }}", ""},
		{"EVALUATE Sales -- a comment\n= {{ dax .x }}", ""},
		{`/* a ** comment */ {{ dax .x }}`, ""},
		{`x -{{ dax .n }}`, ""},
		{`x/{{ dax .n }}`, ""},
		{`'Sales Table'{{ dax .x }}`, ""},
		{`Sales[a]]b] = {{ dax .x }}`, ""},
		{`"a""b" = {{ dax .x }}`, ""},
		{`({{ dax .x }})`, ""},
		{`{{ if .x }}"a"{{ else }}"b"{{ end }} & {{ dax .s }}`, ""},
		{`{{ $v := .x }}{{ dax $v }}`, ""},
		{`{{ range .n }}{{ dax .s }} & {{ end }}""`, ""},
		{`{{/* a template comment */}}{{ dax .x }}`, ""},
		{`{{ with .x }}{{ dax . }}{{ end }}`, ""},

		// Inside a literal, a name or a comment.
		{`EVALUATE FILTER(Small, Small[Name] = "pre{{ dax .nm }}")`, `{{ dax .nm }} stands inside a DAX string literal ("..."): a value there is spliced into the string unquoted, and a " in it ends the string; write {{ dax .nm }} outside the quotes, where it renders a quoted literal, and join with &, e.g. "pre" & {{ dax .nm }}`},
		{`= "a""{{ dax .nm }}"`, "inside a DAX string literal"},
		{`= "{{ .nm }}"`, `{{ .nm }} stands inside a DAX string literal ("..."): a value there is spliced into the string unquoted, and a " in it ends the string; write {{ dax .nm }} outside the quotes`},
		{`EVALUATE 'Sales {{ dax .t }}'`, "inside a quoted table name ('...')"},
		{`EVALUATE 'a''{{ dax .t }}'`, "inside a quoted table name"},
		{`EVALUATE Sales[{{ dax .c }}]`, "inside a bracketed name ([...])"},
		{`EVALUATE Sales[a]]{{ dax .c }}]`, "inside a bracketed name"},
		{`EVALUATE Sales // {{ dax .x }}`, "inside a DAX comment (// or -- up to the end of the line): a line break in the value"},
		{`EVALUATE Sales -- {{ dax .x }}`, "inside a DAX comment (// or --"},
		{"EVALUATE Sales --\r{{ dax .x }}", "inside a DAX comment (// or --"},
		{`EVALUATE /* {{ dax .x }} */ Sales`, "inside a DAX comment (/* ... */)"},
		{`EVALUATE /* a * / {{ dax .x }} */`, "inside a DAX comment (/* ... */)"},
		{`EVALUATE /* a /* b */ {{ dax .x }} */`, "follows a /* written inside a /* ... */ comment"},

		// Touching what the value would run into.
		{`EVALUATE x{{ dax .n }}`, "touches the word before it"},
		{`EVALUATE 1.{{ dax .n }}`, "touches the word before it"},
		{`EVALUATE {{ dax .n }}x`, `the value before "x" touches the word after it`},
		{`= "a"{{ dax .s }}`, `follows a closing " directly`},
		{`= {{ dax .s }}"a"`, `is followed by a " directly`},
		{`= {{ dax .a }}{{ dax .b }}`, "follows another value directly"},

		// On some path through the branches.
		{`{{ if .x }}"{{ end }}{{ dax .s }}`, "inside a DAX string literal"},
		{`{{ if .x }}{{ else }}//{{ end }}{{ dax .s }}`, "inside a DAX comment"},
		{"// {{ if .x }}\n{{ end }}{{ dax .s }}", "inside a DAX comment"},
		{`{{ range .n }}"{{ end }}{{ dax .s }}`, "inside a DAX string literal"},
		{`{{ range .n }}{{ dax .s }} "{{ end }}`, "inside a DAX string literal"},
		{`{{ range .n }}{{ if .x }}{{ break }}{{ end }}"{{ end }} {{ dax .s }}`, "inside a DAX string literal"},
		{`{{ range .n }}[{{ continue }}{{ end }} {{ dax .s }}`, "inside a bracketed name"},
		{`{{ with .x }}'{{ end }}{{ dax .s }}`, "inside a quoted table name"},

		// A raw value in code; the line of a query of several.
		{`= {{ .x }}`, "{{ .x }} puts a raw value into the DAX query: write {{ dax .x }}"},
		{"EVALUATE\nFILTER(T, T[a] = \"{{ dax .x }}\")", "line 2 of the q: {{ dax .x }} stands inside a DAX string literal"},
		{`{{ template "x" }}`, "{{ template }} is not supported"},
	} {
		tmpl, err := parseTemplate("q", c.tmpl)
		if err != nil {
			t.Fatalf("%s: %v", c.tmpl, err)
		}
		err = checkQueryTemplate(tmpl)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.tmpl, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: error %v, want %q", c.tmpl, err, c.err)
		}
	}
}

// TestDAXContextsOfAJob loads the query of the bug report: a template
// action inside a string literal is refused at the query's line.
func TestDAXContextsOfAJob(t *testing.T) {
	job := strings.Replace(validJob, "query: EVALUATE Sales", `query: 'EVALUATE FILTER(Small, Small[Name] = "pre{{ dax .nm }}")'`, 1)
	_, _, err := Loader{LookupEnv: testEnv}.Load("job.yaml", []byte(job))
	if err == nil || !strings.Contains(err.Error(), "job.yaml:6: source.powerbi.query: {{ dax .nm }} stands inside a DAX string literal") {
		t.Errorf("%v", err)
	}
}

// TestQueryTemplateDeepNesting checks a template of 300 nested loops and
// branches: each node's result is computed once per lexer state, so the
// check stays linear (a fixed point per loop, recomputed for every
// iteration of the loops around it, would not end).
func TestQueryTemplateDeepNesting(t *testing.T) {
	const depth = 300
	var b strings.Builder
	for range depth {
		b.WriteString(`{{ range .n }}"`)
	}
	for range depth {
		b.WriteString(`{{ end }}`)
	}
	b.WriteString(` {{ dax .x }}`)
	tmpl, err := parseTemplate("q", b.String())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- checkQueryTemplate(tmpl) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "inside a DAX string literal") {
			t.Errorf("err = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the check of nested loops does not end")
	}
}

func TestDAXOrderHasEveryState(t *testing.T) {
	var all daxStates
	for _, s := range daxOrder {
		all |= stateSet(s)
	}
	if all != stateSet(daxNested+1)-1 {
		t.Errorf("daxOrder covers %b, want every state up to daxNested", all)
	}
}
