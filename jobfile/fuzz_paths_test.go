package jobfile

import (
	"path"
	"strings"
	"testing"

	"github.com/pbicopy/pbicopy/sink"
)

// FuzzRenderOutput renders output path templates with any value of a
// string parameter v. Whatever the value, a path renderOutput accepts
// stays in the folder the template's static prefix names: no NUL, no \ in
// the part the value writes, no empty segment there, no way up or out
// (.., an absolute path, another container, a local path turned into a
// URL). A template that starts with a value takes its folder from it, but
// still with none of those.
func FuzzRenderOutput(f *testing.F) {
	for _, tmpl := range []string{
		"out/day={{ .v }}/sales.parquet",
		"out/{{ .v }}",
		"out/..{{ .v }}",
		"../shared/{{ .v }}.csv",
		"/srv/data/{{ .v }}/x.csv",
		"{{ .v }}/sales.parquet",
		"a{{ .v }}",
		"az://lake/sales/{{ .v }}/x.parquet",
		"az://lake/{{ .v }}",
		"az://la{{ .v }}/x.parquet",
		"az://{{ .v }}/x.parquet",
		"out/{{ if .v }}{{ .v }}{{ else }}none{{ end }}/x-{{ .part }}.csv",
		"https://acct.blob.core.windows.net/c/{{ .v }}.csv",
	} {
		for _, v := range []string{"2024-01-01", "..", "../../etc", "/abs", "", ".", `..\..\x`, "z://lake/x", "a\x00b", "lake/../x", "x/", "a//b"} {
			f.Add(tmpl, v)
		}
	}
	f.Fuzz(func(t *testing.T, tmpl, v string) {
		if len(tmpl) > 500 || strings.Contains(tmpl, "range") {
			return
		}
		parsed, err := parseTemplate("path", tmpl)
		if err != nil {
			return
		}
		prefix, dynamic := staticPrefix(parsed.Root)
		if !dynamic {
			return // no value reaches the path
		}
		got, err := renderOutput(tmpl, map[string]any{"v": v})
		if err != nil {
			return
		}
		fail := func(why string) {
			t.Helper()
			t.Fatalf("%q with v=%q renders %q, %s", tmpl, v, got, why)
		}
		if strings.IndexByte(got, 0) >= 0 {
			fail("which holds a NUL")
		}
		scheme, _, isURL := strings.Cut(prefix, "://")
		switch {
		case isURL && strings.Contains(scheme, "/"):
			isURL = false
		case isURL && scheme != "az":
			// https:// paths: the scheme and host stay the prefix's.
			if !strings.HasPrefix(got, prefix[:len(scheme)+3]) {
				fail("which leaves the prefix's scheme")
			}
			return
		}
		switch {
		case isURL:
			checkBlobPath(fail, prefix, got)
		case prefix == "" && sink.IsBlobPath(got):
			checkBlobPath(fail, "az://", got)
		case prefix == "":
			// The value gives the folder, which may be absolute.
			if strings.ContainsRune(got, '\\') {
				fail(`which holds a \`)
			}
			for _, seg := range strings.Split(strings.TrimPrefix(got, "/"), "/") {
				if seg == "" || seg == ".." {
					fail("which has an empty or .. segment")
				}
			}
		default:
			checkLocalPath(fail, prefix, got)
		}
	})
}

// checkLocalPath checks a local path rendered after a static prefix: it
// stays in the prefix's folder.
func checkLocalPath(fail func(string), prefix, got string) {
	if sink.IsBlobPath(got) || strings.Contains(got, "://") && !strings.Contains(strings.SplitN(got, "://", 2)[0], "/") {
		fail("a URL, from a local prefix")
	}
	if strings.ContainsRune(got[len(prefix):], '\\') {
		fail(`which holds a \ after the prefix`)
	}
	folder := prefix[:strings.LastIndexByte(prefix, '/')+1]
	rest := got[len(folder):]
	if rest == "" || strings.HasSuffix(rest, "/") || strings.Contains(got[max(0, len(prefix)-1):], "//") {
		fail("which has an empty segment")
	}
	clean, base := path.Clean(got), path.Clean(folder+"x")
	base = base[:len(base)-1] // the folder, cleaned, with its trailing / ("" for the current one)
	if base == "" && (clean == ".." || strings.HasPrefix(clean, "../") || strings.HasPrefix(clean, "/")) || !strings.HasPrefix(clean, base) {
		fail("which leaves the folder " + folder)
	}
}

// checkBlobPath checks an az:// path rendered after a static prefix: its
// container is the prefix's (when the prefix names it whole), its blob
// name starts with the prefix's folder, and no segment is empty, . or ..,
// nor holds a \.
func checkBlobPath(fail func(string), prefix, got string) {
	rest, ok := strings.CutPrefix(got, "az://")
	if !ok {
		fail("which is not an az:// path")
	}
	container, name, _ := strings.Cut(rest, "/")
	if pc, pname, whole := strings.Cut(strings.TrimPrefix(prefix, "az://"), "/"); whole {
		if container != pc {
			fail("in another container than " + pc)
		}
		if folder := pname[:strings.LastIndexByte(pname, '/')+1]; !strings.HasPrefix(name, folder) {
			fail("outside the folder " + folder)
		}
	}
	if strings.ContainsRune(name, '\\') {
		fail(`which holds a \`)
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "" || seg == "." || seg == ".." {
			fail("which has an empty, . or .. segment")
		}
	}
}
