package pipeline

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"text/template/parse"
	"time"

	"github.com/pbicopy/pbicopy/internal/azure"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/pbicopy/pbicopy/sink"
)

// StorageSpec is the job's storage block: how the file sinks whose path is
// a blob (az://<container>/<path> or https://<account>.blob.<suffix>/...)
// reach Azure Blob Storage.
type StorageSpec struct {
	Account          string          `yaml:"account" doc:"Storage account name, for az:// paths; default the connection string's account, else AZURE_STORAGE_ACCOUNT."`
	Endpoint         string          `yaml:"endpoint" doc:"Blob service URL, for a private endpoint or an emulator (Azurite: http://127.0.0.1:10000/devstoreaccount1); default https://<account>.blob.<cloud's suffix>."`
	ConnectionString string          `yaml:"connectionString" doc:"Connection string with an AccountKey or a SharedAccessSignature; write ${ENV_VAR}. Default: AZURE_STORAGE_CONNECTION_STRING, when no credential below is set."`
	SASToken         string          `yaml:"sasToken" doc:"Shared access signature for the container (permissions r, c, w, and d for split outputs); write ${ENV_VAR}."`
	AccountKey       string          `yaml:"accountKey" doc:"Storage account key; write ${ENV_VAR}."`
	Auth             *azure.AuthSpec `yaml:"auth" doc:"Entra ID credentials for storage; default the Power BI source's (DefaultAzureCredential for a file source). The identity needs Storage Blob Data Contributor on the container."`
	Cloud            string          `yaml:"cloud" doc:"public, usgov or china: the Blob endpoint suffix and Entra ID authority for storage; default the Power BI source's cloud."`
	BlockSize        int64           `yaml:"blockSize" doc:"Bytes per staged block, 65536 to 4194304000; default 8388608 (8 MiB: blobs up to ~390 GiB). Memory per upload is blockSize x (concurrency + 1)."`
	Concurrency      int             `yaml:"concurrency" doc:"Blocks uploaded at once per blob, 1 to 64; default 4."`
}

// Environment variables read for blob outputs.
const (
	envConnectionString = "AZURE_STORAGE_CONNECTION_STRING"
	envAccount          = "AZURE_STORAGE_ACCOUNT"
)

// outputPath is a file sink's rendered path, classified.
type outputPath struct {
	blob      bool
	local     string // local: absolute path
	container string // blob
	name      string // blob name
	service   string // blob, from an https URL: https://<host>/
	account   string // blob, from an https URL
}

var (
	containerRE   = regexp.MustCompile(`^(\$root|\$web|[a-z0-9](?:[a-z0-9]|-[a-z0-9]){2,62})$`)
	accountNameRE = regexp.MustCompile(`^[a-z0-9]{3,24}$`)
)

// parseOutputPath classifies a rendered output path: az://<container>/<blob
// name>, https://<account>.blob.<suffix>/<container>/<blob name>, or a
// local path (made absolute). A blob path must name a container and a blob
// whose segments are neither empty nor . or ..; its errors never quote a
// query string (which would hold a SAS token).
func parseOutputPath(p string) (outputPath, error) {
	scheme, rest, hasScheme := strings.Cut(p, "://")
	if !hasScheme || strings.ContainsAny(scheme, `/\`) || runtime.GOOS == "windows" && len(scheme) == 1 {
		abs, err := filepath.Abs(p)
		if err != nil {
			return outputPath{}, err
		}
		return outputPath{local: abs}, nil
	}
	var op outputPath
	switch strings.ToLower(scheme) {
	case "az":
		if strings.ContainsAny(rest, "?#") || strings.Contains(strings.ToLower(rest), "sig=") {
			return outputPath{}, errors.New("an az:// path cannot carry a query (a SAS token would show in logs and summaries): put the token in storage.sasToken, from ${ENV}")
		}
		op.container, op.name, _ = strings.Cut(rest, "/")
	case "https":
		u, err := url.Parse(p)
		if err != nil {
			return outputPath{}, errors.New("not a valid URL: write https://<account>.blob.core.windows.net/<container>/<path>")
		}
		if u.RawQuery != "" || u.User != nil {
			return outputPath{}, errors.New("the URL carries a query or user information: put the SAS token in storage.sasToken (from ${ENV}), never in the path")
		}
		host := strings.ToLower(u.Hostname())
		account, suffix, _ := strings.Cut(host, ".")
		if !strings.HasPrefix(suffix, "blob.") || net.ParseIP(host) != nil {
			return outputPath{}, fmt.Errorf("%s is not a Blob service host (<account>.blob.core.windows.net): for another endpoint write az://<container>/<path> and set storage.endpoint", host)
		}
		op.account, op.service = account, "https://"+u.Host+"/"
		op.container, op.name, _ = strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	case "http":
		return outputPath{}, errors.New("blob paths use https: write https://<account>.blob.core.windows.net/..., or az://<container>/<path> with storage.endpoint for an emulator")
	default:
		return outputPath{}, fmt.Errorf("unknown scheme %s://: write a local path, az://<container>/<path> or https://<account>.blob.core.windows.net/<container>/<path>", scheme)
	}
	op.blob = true
	switch {
	case op.container == "":
		return outputPath{}, errors.New("no container: write az://<container>/<path>")
	case strings.Contains(op.container, sink.PartMarker):
		return outputPath{}, errors.New("{{ .part }} must be in the blob's path, not in the container name")
	case !containerRE.MatchString(op.container):
		return outputPath{}, fmt.Errorf("%q is not a container name: 3 to 63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit", op.container)
	case op.name == "":
		return outputPath{}, fmt.Errorf("no blob path after the container: write az://%s/<path>", op.container)
	}
	if err := sink.CheckBlobName(op.name); err != nil {
		return outputPath{}, err
	}
	return op, nil
}

// renderOutput renders a file sink's path template with params, and with
// .part standing for sink.PartMarker, which each part replaces by its
// number (see sink.PartName). The path is rendered once for the whole
// output; rendering it per part would allow {{ .part }} in any function,
// but then the parts' common folder, where the manifest goes, could not be
// known in advance.
//
// It refuses a rendered local path that escapes its static prefix (the
// template text before the first action): a templated segment that is
// empty, . or .. (see checkTemplated). A blob path may not hold such
// segments anywhere, nor start its blob name with /. The name part is
// reserved: a --param part is overridden.
func renderOutput(tmpl string, params map[string]any) (outputPath, error) {
	t, err := parseTemplate("path", tmpl)
	if err != nil {
		return outputPath{}, err
	}
	withPart := make(map[string]any, len(params)+1)
	for k, v := range params {
		withPart[k] = v
	}
	withPart["part"] = sink.PartMarker
	rendered, err := render(t, withPart)
	if err != nil {
		return outputPath{}, err
	}
	if strings.TrimSpace(rendered) == "" {
		return outputPath{}, errors.New("the path renders empty")
	}
	op, err := parseOutputPath(rendered)
	if err != nil {
		return outputPath{}, err
	}
	if prefix, dynamic := staticPrefix(t.Root); dynamic && !op.blob {
		if err := checkTemplated(prefix, rendered); err != nil {
			return outputPath{}, err
		}
	}
	return op, nil
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
// follows the static prefix) makes an empty, . or .. segment, or makes the
// path absolute after a static prefix. The static prefix may hold anything
// the job's author wrote, such as ../out; a path that starts with a
// template ({{ .root }}/sales.parquet) takes its folder from the value,
// which may then be absolute.
func checkTemplated(prefix, rendered string) error {
	if len(rendered) <= len(prefix) || rendered[:len(prefix)] != prefix {
		return nil
	}
	isSep := func(c byte) bool { return c == '/' || runtime.GOOS == "windows" && c == '\\' }
	start := 0
	if prefix == "" && isSep(rendered[0]) {
		start = 1 // the root of an absolute path
	}
	for i := start; i <= len(rendered); i++ {
		if i < len(rendered) && !isSep(rendered[i]) {
			continue
		}
		// A segment holds templated text if it ends past the prefix; an
		// empty one does if it starts past it.
		if seg := rendered[start:i]; i > len(prefix) || seg == "" && start >= len(prefix) {
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

// fileTarget is where and how a file sink publishes, as planned for one
// partition. It holds the credentials of a blob account: it must never be
// printed (String shows its location only).
type fileTarget struct {
	kind     string // parquet or csv
	spec     SinkSpec
	job      string
	out      sink.OutputOptions
	location string // absolute path or URL, with sink.PartMarker in a split output's; no secret

	// The folder and the name (or, split, the part name pattern) within
	// it, with / between subfolders.
	dir  string // local folder
	name string

	blob      bool
	container string
	prefix    string // blob name prefix of the folder
	acct      sink.BlobAccount
	blobOpts  sink.BlobOptions
	entra     *azure.AuthSpec // build an Entra ID credential from it at open
	cloud     string          // of entra
	entraPath string          // field path of entra, for messages
	method    string          // how the credential was chosen, for describe
	planErr   error           // a blob account that cannot be resolved: reported at open
}

func (t *fileTarget) String() string { return t.location }

// describe says where the sink publishes and how, for a dry run; it never
// shows a secret.
func (t *fileTarget) describe() string {
	var b strings.Builder
	b.WriteString(t.kind + " " + t.location)
	if t.out.Split() {
		b.WriteString(" (parts")
		if t.out.MaxRows > 0 {
			fmt.Fprintf(&b, " of at most %d rows", t.out.MaxRows)
		}
		if t.out.MaxBytes > 0 {
			fmt.Fprintf(&b, " of about %d bytes", t.out.MaxBytes)
		}
		b.WriteString(", listed by " + sink.ManifestName + ")")
	}
	if !t.out.Overwrite {
		b.WriteString(" (create only)")
	}
	if t.blob {
		if t.planErr != nil {
			b.WriteString(" [" + t.planErr.Error() + "]")
		} else {
			fmt.Fprintf(&b, " [%s; blocks of %d bytes, %d at once]", t.method, cmp.Or(t.blobOpts.BlockSize, sink.DefaultBlockSize), cmp.Or(t.blobOpts.Concurrency, sink.DefaultBlobConcurrency))
		}
	}
	return b.String()
}

// planFile renders the path of file sink i and works out where it goes:
// a local folder, or a blob container with the account and credential to
// reach it. It reads the environment but makes no request; a blob account
// that cannot be resolved is reported when the sink opens.
func planFile(job *Job, s SinkSpec, tmpl string, params map[string]any) (*fileTarget, error) {
	op, err := renderOutput(tmpl, params)
	if err != nil {
		return nil, err
	}
	t := &fileTarget{kind: s.Kind(), spec: s, job: job.Name}
	switch {
	case s.Parquet != nil:
		t.out = s.Parquet.Output()
	case s.CSV != nil:
		t.out = s.CSV.Output()
	}
	full := op.local
	if op.blob {
		full = op.name
	}
	marker := strings.Index(full, sink.PartMarker)
	if t.out.Split() != (marker >= 0) {
		if marker < 0 {
			return nil, errors.New("maxRowsPerFile or maxBytesPerFile splits the output into parts: the path must contain {{ .part }}")
		}
		return nil, errors.New("{{ .part }} numbers the parts of a split output: set maxRowsPerFile or maxBytesPerFile")
	}
	if !op.blob {
		cut := len(full)
		if marker >= 0 {
			cut = marker
		}
		i := strings.LastIndexAny(full[:cut], string(filepath.Separator)+"/") + 1
		t.dir, t.name = full[:i], filepath.ToSlash(full[i:])
		t.location = op.local
		return t, nil
	}
	t.blob, t.container = true, op.container
	if marker >= 0 {
		i := strings.LastIndexByte(op.name[:marker], '/') + 1
		t.prefix, t.name = op.name[:i], op.name[i:]
	} else {
		t.name = op.name
	}
	st := job.Storage
	if st == nil {
		st = &StorageSpec{}
	}
	t.blobOpts = sink.BlobOptions{BlockSize: st.BlockSize, Concurrency: st.Concurrency, Job: job.Name}
	t.location = "az://" + op.container + "/" + op.name
	t.planErr = t.resolveAccount(job, st, op)
	if t.planErr == nil {
		if ep, err := t.acct.Endpoint(); err == nil {
			t.location = ep + op.container + "/" + op.name
		}
	}
	return t, nil
}

// resolveAccount chooses the Blob endpoint and the credential.
//
// The endpoint: the https URL of the path, else storage.endpoint, else the
// connection string's (the job's, or AZURE_STORAGE_CONNECTION_STRING), else
// https://<storage.account or AZURE_STORAGE_ACCOUNT>.blob.<cloud suffix>/.
//
// The credential, in this order: the job's storage.connectionString,
// storage.sasToken, storage.accountKey or storage.auth (validation allows
// one of them); else AZURE_STORAGE_CONNECTION_STRING, if it reaches the
// account the path or the job names; else Entra ID with the Power BI
// source's auth block (DefaultAzureCredential for a file source).
func (t *fileTarget) resolveAccount(job *Job, st *StorageSpec, op outputPath) error {
	cloudName := st.Cloud
	if cloudName == "" && job.Source.PowerBI != nil {
		cloudName = job.Source.PowerBI.Cloud
	}
	cloud, err := azure.LookupCloud(cloudName)
	if err != nil {
		return fmt.Errorf("storage.cloud: %w", err)
	}
	service := op.service
	if st.Endpoint != "" {
		ep, err := sink.BlobAccount{ServiceURL: st.Endpoint}.Endpoint()
		if err != nil {
			return fmt.Errorf("storage.endpoint: %w", err)
		}
		if service != "" && !sameEndpoint(ep, service) {
			return fmt.Errorf("the path names %s but storage.endpoint is %s: give one of them", service, ep)
		}
		service = ep
	}
	if service == "" && st.Account != "" {
		service = "https://" + st.Account + ".blob." + cloud.BlobSuffix + "/"
	}
	envCS := os.Getenv(envConnectionString)
	explicit := st.ConnectionString != "" || st.SASToken != "" || st.AccountKey != "" || st.Auth != nil
	useEnvCS := false
	if !explicit && envCS != "" {
		ep, err := sink.BlobAccount{ConnectionString: envCS}.Endpoint()
		if err != nil {
			return fmt.Errorf("%s: %w", envConnectionString, err)
		}
		useEnvCS = service == "" || sameEndpoint(ep, service)
	}
	if service == "" {
		switch {
		case st.ConnectionString != "" || useEnvCS:
			// The connection string names its endpoint.
		case os.Getenv(envAccount) != "":
			service = "https://" + os.Getenv(envAccount) + ".blob." + cloud.BlobSuffix + "/"
		default:
			return fmt.Errorf("no storage account for %s: set storage.account (or storage.endpoint, storage.connectionString), or %s or %s in the environment", "az://"+op.container+"/"+op.name, envConnectionString, envAccount)
		}
	}
	t.acct = sink.BlobAccount{ServiceURL: service}
	switch {
	case st.ConnectionString != "" || useEnvCS:
		cs := st.ConnectionString
		t.method = "connection string from storage.connectionString"
		if cs == "" {
			cs, t.method = envCS, "connection string from "+envConnectionString
		}
		ep, err := sink.BlobAccount{ConnectionString: cs}.Endpoint()
		if err != nil {
			return fmt.Errorf("storage.connectionString: %w", err)
		}
		if service != "" && !sameEndpoint(ep, service) {
			return fmt.Errorf("the connection string reaches %s, not %s", ep, service)
		}
		t.acct.ConnectionString = cs
	case st.SASToken != "":
		t.acct.SASToken, t.method = st.SASToken, "SAS token from storage.sasToken"
	case st.AccountKey != "":
		name := st.Account
		if name == "" {
			name = accountFromEndpoint(service)
		}
		if name == "" {
			name = os.Getenv(envAccount)
		}
		if name == "" {
			return errors.New("storage.accountKey: the account name is not known: set storage.account")
		}
		t.acct.AccountName, t.acct.AccountKey, t.method = name, st.AccountKey, "account key from storage.accountKey"
	case st.Auth != nil:
		t.entra, t.cloud, t.entraPath, t.method = st.Auth, cloud.Name, "storage.auth", "Entra ID from storage.auth"
	case job.Source.PowerBI != nil:
		t.entra, t.cloud, t.entraPath, t.method = &job.Source.PowerBI.Auth, cloud.Name, "source.powerbi.auth", "Entra ID from source.powerbi.auth"
	default:
		t.entra, t.cloud, t.entraPath, t.method = &azure.AuthSpec{Method: azure.MethodDefault}, cloud.Name, "storage.auth", "Entra ID from the environment (DefaultAzureCredential)"
	}
	return nil
}

// sameEndpoint compares two Blob service URLs.
func sameEndpoint(a, b string) bool {
	norm := func(s string) string { return strings.ToLower(strings.TrimSuffix(s, "/")) }
	return norm(a) == norm(b)
}

// accountFromEndpoint is the account a Blob service URL names: the first
// label of <account>.blob.<suffix>, or the first path segment of an
// emulator's http://127.0.0.1:10000/<account>.
func accountFromEndpoint(ep string) string {
	u, err := url.Parse(ep)
	if err != nil {
		return ""
	}
	if net.ParseIP(u.Hostname()) != nil || u.Hostname() == "localhost" {
		seg, _, _ := strings.Cut(strings.Trim(u.Path, "/"), "/")
		return seg
	}
	if account, suffix, _ := strings.Cut(u.Hostname(), "."); strings.HasPrefix(suffix, "blob.") {
		return account
	}
	return ""
}

// openFile opens a file sink: one file, or a split output, locally or in a
// blob container.
func (r *Runner) openFile(ctx context.Context, t *fileTarget, schema *arrow.Schema) (sink.Sink, error) {
	folder, err := r.folder(ctx, t)
	if err != nil {
		return nil, err
	}
	encoder := func(dst sink.Destination) (sink.Sink, error) {
		if t.spec.Parquet != nil {
			return sink.NewParquet(dst, schema, *t.spec.Parquet, r.mem())
		}
		return sink.NewCSV(dst, schema, *t.spec.CSV)
	}
	var s sink.Sink
	if t.out.Split() {
		s, err = sink.NewSplit(ctx, sink.SplitConfig{Folder: folder, Pattern: t.name, Encoder: encoder, Format: t.kind, Job: t.job, Output: t.out})
		if err != nil {
			return nil, err
		}
	} else {
		dst, err := folder.Open(ctx, t.name, t.out.Overwrite)
		if err != nil {
			return nil, err
		}
		if s, err = encoder(dst); err != nil {
			_ = dst.Abort(ctx)
			return nil, err
		}
	}
	return &warningSink{Sink: s, log: r.logger().With("job", t.job, "sink", t.kind)}, nil
}

// folder returns the Folder a file sink publishes into, building the Entra
// ID credential of a blob account if it needs one.
func (r *Runner) folder(ctx context.Context, t *fileTarget) (sink.Folder, error) {
	if !t.blob {
		return sink.LocalFolder(t.dir)
	}
	if t.planErr != nil {
		return nil, t.planErr
	}
	acct := t.acct
	if t.entra != nil {
		cred, err := r.credential(ctx, *t.entra, t.cloud, t.entraPath)
		if err != nil {
			return nil, fmt.Errorf("storage credential: %w", err)
		}
		acct.Credential = cred
	}
	c, err := sink.OpenBlobContainer(acct, t.container, t.blobOpts)
	if err != nil {
		return nil, err
	}
	return c.Folder(t.prefix), nil
}

// checkFile proves, without publishing anything, that a file sink could
// publish, for an online check: a local folder accepts a file
// (sink.ProbeLocal); a blob container is reachable with the credential,
// which may read the target and stage a block beside it (never
// committed). It returns what it proved.
func (r *Runner) checkFile(ctx context.Context, t *fileTarget) (string, error) {
	if !t.blob {
		path := sink.PartName(t.location, 0)
		dir, create, err := sink.ProbeLocal(path)
		if err != nil {
			return "", err
		}
		msg := "folder " + dir + " is writable"
		if create {
			msg += "; the folders of " + path + " will be created"
		}
		return msg, nil
	}
	folder, err := r.folder(ctx, t)
	if err != nil {
		return "", err
	}
	c := folder.(interface {
		Probe(ctx context.Context, name string) (bool, error)
	})
	name := sink.PartName(t.name, 0)
	exists, err := c.Probe(ctx, name)
	if err != nil {
		return "", err
	}
	msg := fmt.Sprintf("%s: reachable with %s, which may read and write there", folder.Location(name), t.method)
	switch {
	case exists && !t.out.Overwrite:
		return "", fmt.Errorf("%s exists and overwrite is false: the run would fail", folder.Location(name))
	case exists:
		msg += "; the blob exists and will be replaced"
	}
	return msg, nil
}

// warningSink logs the warnings of a committed output.
type warningSink struct {
	sink.Sink
	log *slog.Logger
}

func (w *warningSink) Commit(ctx context.Context) (sink.Result, error) {
	res, err := w.Sink.Commit(ctx)
	for _, msg := range res.Warnings {
		w.log.Warn(msg, "location", res.Location)
	}
	return res, err
}

// validateStorage checks the storage block and the file sinks' paths:
// their shape (rendered with placeholder values, since the real ones come
// at run time), {{ .part }} against the split settings, and the manifests
// of split outputs, which must not collide.
func (d *decoder) validateStorage(j *Job) {
	line := j.lines.lineOf
	manifests := map[string]string{}
	for i, s := range j.Sinks {
		var tmpl string
		var out sink.OutputOptions
		switch {
		case s.Parquet != nil:
			tmpl, out = s.Parquet.Path, s.Parquet.Output()
		case s.CSV != nil:
			tmpl, out = s.CSV.Path, s.CSV.Output()
		default:
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
			switch j.Params[name].Type {
			case ParamDate:
				params[name] = Date{time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)}
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
		op, err := renderOutput(tmpl, params)
		if err != nil {
			if !strings.Contains(err.Error(), "no value was given") && !strings.HasPrefix(err.Error(), "render:") {
				d.errorf(line(kp+".path"), kp+".path", "%v", err)
			}
			continue
		}
		if out.Split() {
			m := manifestOf(op)
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
	if st.Account != "" && !accountNameRE.MatchString(st.Account) {
		d.errorf(line("storage.account"), "storage.account", "%q is not a storage account name: 3 to 24 lowercase letters and digits", st.Account)
	}
	if st.Endpoint != "" {
		u, err := url.Parse(st.Endpoint)
		switch {
		case err != nil || u.Host == "" || u.Scheme != "https" && u.Scheme != "http":
			d.errorf(line("storage.endpoint"), "storage.endpoint", "not a Blob service URL such as https://myaccount.blob.core.windows.net or http://127.0.0.1:10000/devstoreaccount1")
		case u.RawQuery != "" || u.User != nil:
			d.errorf(line("storage.endpoint"), "storage.endpoint", "the URL carries a query or user information: put a SAS token in storage.sasToken")
		}
	}
	if st.Cloud != "" {
		if _, err := azure.LookupCloud(st.Cloud); err != nil {
			d.errorf(line("storage.cloud"), "storage.cloud", "%v", err)
		}
	}
	var given []string
	for _, f := range []struct {
		name string
		set  bool
	}{{"connectionString", st.ConnectionString != ""}, {"sasToken", st.SASToken != ""}, {"accountKey", st.AccountKey != ""}, {"auth", st.Auth != nil}} {
		if f.set {
			given = append(given, f.name)
		}
	}
	if len(given) > 1 {
		d.errorf(line("storage"), "storage", "give one credential, not %s: connectionString, sasToken, accountKey or auth", strings.Join(given, " and "))
	}
	if st.ConnectionString != "" {
		if _, err := (sink.BlobAccount{ConnectionString: st.ConnectionString}).Endpoint(); err != nil {
			d.errorf(line("storage.connectionString"), "storage.connectionString", "%v", err)
		}
	}
	if st.SASToken != "" {
		q, err := url.ParseQuery(strings.TrimPrefix(st.SASToken, "?"))
		if err != nil || q.Get("sig") == "" || strings.Contains(st.SASToken, "://") {
			d.errorf(line("storage.sasToken"), "storage.sasToken", "not a SAS token: give the query string (sv=...&sig=...), without the URL before it")
		}
	}
	if st.AccountKey != "" {
		if _, err := base64.StdEncoding.DecodeString(st.AccountKey); err != nil {
			d.errorf(line("storage.accountKey"), "storage.accountKey", "not an account key (base64)")
		}
	}
	for _, f := range []string{"connectionString", "sasToken", "accountKey"} {
		if d.literal["storage."+f] {
			d.warnf(line("storage."+f), "storage."+f, "the secret is written in the job file: reference an environment variable instead, e.g. ${AZURE_STORAGE_SAS}, and rotate this secret")
		}
	}
	if err := (sink.BlobOptions{BlockSize: st.BlockSize}).Validate(); err != nil {
		d.errorf(line("storage.blockSize"), "storage.blockSize", "%s", strings.TrimPrefix(err.Error(), "blockSize: "))
	}
	if err := (sink.BlobOptions{Concurrency: st.Concurrency}).Validate(); err != nil {
		d.errorf(line("storage.concurrency"), "storage.concurrency", "%s", strings.TrimPrefix(err.Error(), "concurrency: "))
	}
	if st.Auth != nil {
		d.validateAuth(j, *st.Auth, "storage.auth", st.Cloud)
	}
}

// manifestOf is where a split output's manifest goes: the folder of its
// name up to the part number.
func manifestOf(op outputPath) string {
	full := op.local
	if op.blob {
		full = "az://" + op.container + "/" + op.name
	}
	i := strings.Index(full, sink.PartMarker)
	if i < 0 {
		return full
	}
	return full[:strings.LastIndexAny(full[:i], string(filepath.Separator)+"/")+1] + sink.ManifestName
}
