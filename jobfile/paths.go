package jobfile

import (
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"text/template/parse"
	"time"

	"github.com/pbicopy/pbicopy/internal/azure"
	"github.com/pbicopy/pbicopy/sink"
)

// renderOutput renders a file sink's path template with params, and with
// .part standing for sink.PartMarker, which each part replaces by its
// number (see sink.PartName). The path is rendered once for the whole
// output; rendering it per part would allow {{ .part }} in any function,
// but then the parts' common folder, where the manifest goes, could not be
// known in advance.
//
// No template value may move the output out of the folder the template's
// static prefix (its text before the first action) names: the rendered
// path may hold no NUL; a local path's templated part (see checkTemplated)
// no empty, . or .. segment and no \ (a folder separator on Windows, on
// any system); a local prefix cannot become a URL (a{{ .v }} with
// z://lake/x). A blob path may not hold empty, . or .. segments anywhere,
// nor start its blob name with /. The name part is reserved: a --param
// part is overridden.
func renderOutput(tmpl string, params map[string]any) (string, error) {
	t, err := parseTemplate("path", tmpl)
	if err != nil {
		return "", err
	}
	withPart := make(map[string]any, len(params)+1)
	for k, v := range params {
		withPart[k] = v
	}
	withPart["part"] = sink.PartMarker
	rendered, err := render(t, withPart)
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(rendered) == "" {
		return "", errors.New("the path renders empty")
	}
	if strings.IndexByte(rendered, 0) >= 0 {
		return "", fmt.Errorf("%q holds a NUL byte, which no file or blob name may hold", rendered)
	}
	if err := sink.CheckPath(rendered); err != nil {
		return "", err
	}
	prefix, dynamic := staticPrefix(t.Root)
	if !dynamic || sink.IsBlobPath(rendered) && (prefix == "" || strings.Contains(prefix, "://")) {
		return rendered, nil
	}
	if sink.IsBlobPath(rendered) {
		return "", fmt.Errorf("the templated part of %q turns a local path into a URL: a template value may not choose where the output goes", rendered)
	}
	if err := checkTemplated(prefix, rendered); err != nil {
		return "", err
	}
	return rendered, nil
}

// staticPrefix is the text a template renders before its first action;
// dynamic is false if the template has no action.
func staticPrefix(root *parse.ListNode) (prefix string, dynamic bool) {
	if root == nil || len(root.Nodes) == 0 {
		return "", false
	}
	if tn, ok := root.Nodes[0].(*parse.TextNode); ok {
		return string(tn.Text), len(root.Nodes) > 1
	}
	return "", true
}

// checkTemplated refuses a rendered local path whose templated part (what
// follows the static prefix) makes an empty, . or .. segment, holds a \
// (on any system: it separates folders on Windows) or, on Windows, a :
// (a drive, or an alternate data stream), or makes the path absolute after
// a static prefix. A segment is templated when the templated part ends it:
// in out/.. followed by {{ .v }}, an empty value makes the .. whole. The
// static prefix may hold anything the job's author wrote, such as ../out;
// a path that starts with a template ({{ .root }}/sales.parquet) takes its
// folder from the value, which may then be absolute.
func checkTemplated(prefix, rendered string) error {
	if len(rendered) < len(prefix) || rendered[:len(prefix)] != prefix {
		return nil
	}
	windows := runtime.GOOS == "windows"
	templated := rendered[len(prefix):]
	if strings.ContainsRune(templated, '\\') {
		return fmt.Errorf("the templated part of %q holds a \\: a template value may not hold one, write / between folders", rendered)
	}
	if i := strings.IndexByte(templated, ':'); windows && i >= 0 && !(prefix == "" && i == 1) {
		return fmt.Errorf("the templated part of %q holds a :, which Windows reads as a drive or a data stream", rendered)
	}
	isSep := func(c byte) bool { return c == '/' || windows && c == '\\' }
	start := 0
	if prefix == "" && isSep(rendered[0]) {
		start = 1 // the root of an absolute path
	}
	for i := start; i <= len(rendered); i++ {
		if i < len(rendered) && !isSep(rendered[i]) {
			continue
		}
		// The segment rendered[start:i] is templated if the templated
		// part ends it (or it is the last).
		if seg := rendered[start:i]; i >= len(prefix) {
			switch seg {
			case "":
				return fmt.Errorf("the templated part of %q has an empty segment (// or a trailing /)", rendered)
			case ".", "..":
				return fmt.Errorf("the templated part of %q has a %q segment: a template value may not move the output out of its folder", rendered, seg)
			}
		}
		start = i + 1
	}
	return nil
}

// validateStorage checks the storage block and the file sinks' paths:
// their shape (rendered with placeholder values, since the real ones come
// at run time), {{ .part }} against the split settings, and the manifests
// of split outputs, which must not collide.
func (d *decoder) validateStorage(j *Job) {
	line := j.lines.lineOf
	manifests := map[string]string{}
	for i, s := range j.Sinks {
		tmpl := s.Path()
		out, file := s.Output()
		if !file {
			continue
		}
		kp := fmt.Sprintf("sinks[%d].%s", i, s.Kind())
		t, err := parseTemplate("path", tmpl)
		if strings.TrimSpace(tmpl) == "" || err != nil || t.Tree == nil {
			continue // reported by validate
		}
		usesPart := false
		params := map[string]any{}
		walkTemplate(t.Root, func(name string) {
			if name == "part" {
				usesPart = true
				return
			}
			if name == RunIDParam {
				params[name] = RunID(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC))
				return
			}
			switch j.Params[name].Type {
			case ParamDate:
				params[name] = Date{time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)}
			case ParamDateTime:
				params[name] = DateTime{time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)}
			case ParamInt:
				params[name] = int64(0)
			default:
				params[name] = "x"
			}
		})
		switch {
		case out.Split() && !usesPart:
			d.errorf(line(kp+".path"), kp+".path", "maxRowsPerFile or maxBytesPerFile splits the output into parts: the path must contain {{ .part }} (the part number: 00000, 00001, ...), e.g. out/sales/part-{{ .part }}.parquet")
			continue
		case usesPart && !out.Split():
			d.errorf(line(kp+".path"), kp+".path", "{{ .part }} numbers the parts of a split output: set maxRowsPerFile or maxBytesPerFile, or remove it")
			continue
		}
		rendered, err := renderOutput(tmpl, params)
		if err != nil {
			if !strings.Contains(err.Error(), "no value was given") && !strings.HasPrefix(err.Error(), "render:") {
				d.errorf(line(kp+".path"), kp+".path", "%v", err)
			}
			continue
		}
		if out.Split() {
			m, _ := sink.ManifestPath(rendered)
			if prev, dup := manifests[m]; dup {
				d.errorf(line(kp+".path"), kp+".path", "%s writes its parts' %s in the same folder: give the split outputs folders of their own", prev, sink.ManifestName)
			}
			manifests[m] = kp
		}
	}

	st := j.Storage
	if st == nil {
		return
	}
	d.fieldErrors(j, "storage", reflect.TypeFor[sink.StorageSpec](), st.Validate())
	for _, f := range sink.StorageSecretFields {
		if d.literal["storage."+f] {
			d.warnf(line("storage."+f), "storage."+f, "the secret is written in the job file: reference an environment variable instead, e.g. ${AZURE_STORAGE_SAS}, and rotate this secret")
		}
	}
	if st.Auth != nil {
		d.fieldErrors(j, "storage.auth", reflect.TypeFor[azure.AuthSpec](), st.Auth.Validate(st.Cloud))
		d.validateAuth(j, "storage.auth")
	}
}
