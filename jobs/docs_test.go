package jobs_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDocs checks the front door and the manual: the README stays short,
// the manual has its pages, and every relative link of either leads to a
// file that exists (and, with an #anchor, to a heading of that file).
func TestDocs(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(readme), "\n"); n > 250 {
		t.Errorf("README.md has %d lines: keep it under 250 and move the rest to docs/", n)
	}
	pages, _ := filepath.Glob("../docs/*.md")
	if len(pages) < 5 {
		t.Errorf("docs/ has %d pages, want at least 5", len(pages))
	}
	for _, want := range []string{"contributing.md", "job-reference.md"} {
		if _, err := os.Stat(filepath.Join("../docs", want)); err != nil {
			t.Errorf("docs/%s: %v", want, err)
		}
	}
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, file := range append([]string{"../README.md"}, pages...) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(data), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, anchor, _ := strings.Cut(target, "#")
			full := file
			if path != "" {
				full = filepath.Join(filepath.Dir(file), path)
			}
			body, err := os.ReadFile(full)
			if err != nil {
				if info, serr := os.Stat(full); serr == nil && info.IsDir() {
					continue
				}
				t.Errorf("%s: link %s: %v", file, target, err)
				continue
			}
			if anchor != "" && !hasAnchor(string(body), anchor) {
				t.Errorf("%s: link %s: no heading %q in %s", file, target, anchor, full)
			}
		}
	}
}

// hasAnchor reports whether a Markdown text has a heading whose GitHub
// anchor is anchor.
func hasAnchor(text, anchor string) bool {
	for _, line := range strings.Split(text, "\n") {
		h := strings.TrimLeft(line, "#")
		if len(h) == len(line) || !strings.HasPrefix(h, " ") {
			continue
		}
		var b strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(h)) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
				b.WriteRune(r)
			}
		}
		if b.String() == anchor {
			return true
		}
	}
	return false
}
