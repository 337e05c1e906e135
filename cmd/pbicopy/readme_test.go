package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestReadmeFirstJob follows the README's "A first job in five minutes"
// walk literally, command by command, in an empty folder: each pbicopy line
// of its first shell block must exit 0 (a ">> FILE" appends the output to
// FILE, as the shell does), and the run must publish both outputs.
func TestReadmeFirstJob(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := regexp.MustCompile("(?s)## A first job in five minutes\n.*?```sh\n(.*?)```").FindSubmatch(readme)
	if section == nil {
		t.Fatal(`README.md has no "## A first job in five minutes" section with a sh block`)
	}
	t.Setenv("PBICOPY_LOG_FORMAT", "text")
	t.Chdir(t.TempDir())
	ran := 0
	for _, line := range strings.Split(string(section[1]), "\n") {
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] != "pbicopy" {
			continue
		}
		args, appendTo := fields[1:], ""
		if i := slices.Index(args, ">>"); i >= 0 {
			args, appendTo = args[:i], args[i+1]
		}
		code, stdout, stderr := runCmd(t, args...)
		if code != exitOK {
			t.Fatalf("%s: exit %d\n%s%s", line, code, stdout, stderr)
		}
		if appendTo != "" {
			f, err := os.OpenFile(appendTo, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteString(stdout); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
		ran++
	}
	if ran < 5 {
		t.Fatalf("the walk has %d pbicopy commands", ran)
	}
	for _, out := range []string{"first-job.parquet", "first-job.csv"} {
		if fi, err := os.Stat(filepath.Join("out", "first-job", out)); err != nil || fi.Size() == 0 {
			t.Errorf("after the walk, out/first-job/%s: %v", out, err)
		}
	}
	job, err := os.ReadFile("first-job.yaml")
	if err != nil || !strings.Contains(string(job), "mapping:") {
		t.Errorf("first-job.yaml has no mapping: block after infer >>: %v\n%s", err, job)
	}
}
