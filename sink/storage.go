package sink

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"

	"github.com/pbicopy/pbicopy/internal/azure"
	"github.com/pbicopy/pbicopy/internal/spec"
)

// StorageSpec is the job's storage block: how the file sinks whose path is
// a blob (az://<container>/<path> or https://<account>.blob.<suffix>/...)
// reach Azure Blob Storage.
type StorageSpec struct {
	Account          string          `yaml:"account" pattern:"^[a-z0-9]{3,24}$" patternDoc:"a storage account name: 3 to 24 lowercase letters and digits" defaultDoc:"the connection string's account, else AZURE_STORAGE_ACCOUNT" doc:"Storage account name, for az:// paths."`
	Endpoint         string          `yaml:"endpoint" defaultDoc:"https://<account>.blob.<cloud's suffix>" doc:"Blob service URL, for a private endpoint or an emulator (Azurite: http://127.0.0.1:10000/devstoreaccount1). https; http only on loopback (127.0.0.1, ::1, localhost), as for a connection string's BlobEndpoint."`
	ConnectionString string          `yaml:"connectionString" defaultDoc:"AZURE_STORAGE_CONNECTION_STRING, when no other credential is set" doc:"Connection string with an AccountKey or a SharedAccessSignature; write ${ENV_VAR}."`
	SASToken         string          `yaml:"sasToken" doc:"Shared access signature for the container (permissions r, c, w, and d for split outputs); write ${ENV_VAR}."`
	AccountKey       string          `yaml:"accountKey" doc:"Storage account key; write ${ENV_VAR}."`
	Auth             *azure.AuthSpec `yaml:"auth" defaultDoc:"source.powerbi.auth" doc:"Entra ID credentials for storage; default the Power BI source's (DefaultAzureCredential for a file source). The identity needs Storage Blob Data Contributor on the container."`
	Cloud            string          `yaml:"cloud" enum:"@cloud" env:"true" defaultDoc:"source.powerbi.cloud" doc:"The Blob endpoint suffix and Entra ID authority for storage."`
	BlockSize        int64           `yaml:"blockSize" min:"0" max:"4194304000" default:"8388608" doc:"Bytes per staged block: 0 for the default (8 MiB: blobs up to ~390 GiB) or 65536 and more. Memory per upload is blockSize x (concurrency + 1)."`
	Concurrency      int             `yaml:"concurrency" min:"0" max:"64" default:"4" doc:"Blocks uploaded at once per blob; 0 for the default."`
}

// StorageSecretFields are the fields of a StorageSpec that hold a secret.
var StorageSecretFields = []string{"connectionString", "sasToken", "accountKey"}

// Validate checks the storage block on its own: names, URLs and secrets of
// the right shape, one credential at most. Each error starts with the field
// it is about. The auth block is checked apart (azure.AuthSpec.Validate).
func (st *StorageSpec) Validate() error {
	errs := []error{spec.Check(st)}
	fail := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if st.Endpoint != "" {
		u, err := url.Parse(st.Endpoint)
		switch {
		case err != nil || u.Host == "" || u.Scheme != "https" && u.Scheme != "http":
			fail("endpoint", "not a Blob service URL such as https://myaccount.blob.core.windows.net or http://127.0.0.1:10000/devstoreaccount1")
		case u.RawQuery != "" || u.User != nil:
			fail("endpoint", "the URL carries a query or user information: put a SAS token in storage.sasToken")
		default:
			if err := checkBlobScheme(u); err != nil {
				fail("endpoint", "%v", err)
			}
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
		errs = append(errs, fmt.Errorf("give one credential, not %s: connectionString, sasToken, accountKey or auth", strings.Join(given, " and ")))
	}
	if st.ConnectionString != "" {
		if _, err := (BlobAccount{ConnectionString: st.ConnectionString}).Endpoint(); err != nil {
			fail("connectionString", "%v", err)
		}
	}
	if st.SASToken != "" {
		q, err := url.ParseQuery(strings.TrimPrefix(st.SASToken, "?"))
		if err != nil || q.Get("sig") == "" || strings.Contains(st.SASToken, "://") {
			fail("sasToken", "not a SAS token: give the query string (sv=...&sig=...), without the URL before it")
		}
	}
	if st.AccountKey != "" {
		if _, err := base64.StdEncoding.DecodeString(st.AccountKey); err != nil {
			fail("accountKey", "not an account key (base64)")
		}
	}
	if st.BlockSize != 0 && st.BlockSize < MinBlockSize {
		fail("blockSize", "%d is too small: use 0 for the default or %d (64 KiB) to %d", st.BlockSize, MinBlockSize, MaxBlockSize)
	}
	return errors.Join(errs...)
}

// Block sizes and upload concurrency of a blob destination.
//
// A block blob holds at most 50,000 blocks, so the block size caps the
// blob: the SDK's UploadStream default of 1 MiB stops near 48 GiB, 8 MiB
// near 390 GiB. The memory of an upload is BlockSize × (Concurrency + 1):
// 40 MiB with the defaults, which keep four requests of a size that
// amortises per-request latency in flight.
const (
	DefaultBlockSize       int64 = 8 << 20
	MinBlockSize           int64 = 64 << 10
	MaxBlockSize           int64 = 4000 << 20 // the service's limit for one Put Block
	DefaultBlobConcurrency       = 4
	MaxBlobConcurrency           = 64
)

// BlobOptions tunes the uploads into a blob container.
type BlobOptions struct {
	// BlockSize is the size of every staged block but the last; 0 selects
	// DefaultBlockSize.
	BlockSize int64
	// Concurrency is the number of blocks uploaded at once; 0 selects
	// DefaultBlobConcurrency.
	Concurrency int
	// Job is recorded in the metadata of every blob published.
	Job string
	// Metadata, when not nil, gives more key-value metadata for every blob
	// published (the sensitivity label of the data), read at its commit.
	Metadata func() map[string]string
}

// Validate reports block sizes and concurrencies out of range.
func (o BlobOptions) Validate() error {
	var errs []error
	if o.BlockSize != 0 && (o.BlockSize < MinBlockSize || o.BlockSize > MaxBlockSize) {
		errs = append(errs, fmt.Errorf("blockSize: %d is out of range: use 0 for the default (%d, 8 MiB) or %d (64 KiB) to %d (4000 MiB)", o.BlockSize, DefaultBlockSize, MinBlockSize, MaxBlockSize))
	}
	if o.Concurrency < 0 || o.Concurrency > MaxBlobConcurrency {
		errs = append(errs, fmt.Errorf("concurrency: %d is out of range: use 0 for the default (%d) or 1 to %d", o.Concurrency, DefaultBlobConcurrency, MaxBlobConcurrency))
	}
	return errors.Join(errs...)
}

// EffectiveBlockSize is BlockSize with the default applied.
func (o BlobOptions) EffectiveBlockSize() int64 {
	if o.BlockSize == 0 {
		return DefaultBlockSize
	}
	return o.BlockSize
}

// EffectiveConcurrency is Concurrency with the default applied.
func (o BlobOptions) EffectiveConcurrency() int {
	if o.Concurrency == 0 {
		return DefaultBlobConcurrency
	}
	return o.Concurrency
}

// BlobAccount says how to reach a storage account's Blob service, without
// holding a live credential: exactly one of ConnectionString, SASToken,
// AccountKey and Entra is set. It holds secrets: never print it.
type BlobAccount struct {
	// ServiceURL is the Blob service endpoint, e.g.
	// https://myaccount.blob.core.windows.net/ or, for Azurite,
	// http://127.0.0.1:10000/devstoreaccount1/. It may be empty with a
	// connection string, which names its own.
	ServiceURL string
	// ConnectionString is an Azure Storage connection string with an
	// AccountKey or a SharedAccessSignature, or UseDevelopmentStorage=true
	// (Azurite on its default port).
	ConnectionString string
	// SASToken is a shared access signature (the query string, with or
	// without its leading ?) for the container or the account.
	SASToken string
	// AccountName and AccountKey make a shared key credential.
	AccountName string
	AccountKey  string
	// Entra is the auth block whose Entra ID credential reaches the account
	// (its identity needs Storage Blob Data Contributor on the container),
	// in the cloud Cloud; EntraField names it in messages.
	Entra      *azure.AuthSpec
	Cloud      string
	EntraField string
}

// Method names the kind of credential a names, for messages: it never
// includes the secret.
func (a BlobAccount) Method() string {
	switch {
	case a.ConnectionString != "":
		return "connection string"
	case a.SASToken != "":
		return "SAS token"
	case a.AccountKey != "":
		return "account key"
	case a.Entra != nil:
		return "Entra ID"
	}
	return "no credential"
}

// Endpoint returns the Blob service URL of a, with a trailing slash and
// without any query, from ServiceURL or else from the connection string.
func (a BlobAccount) Endpoint() (string, error) {
	u := a.ServiceURL
	if u == "" && a.ConnectionString != "" {
		cs, err := azure.ParseConnectionString(a.ConnectionString)
		if err != nil {
			return "", err
		}
		u = cs.Endpoint
	}
	if u == "" {
		return "", errors.New("no Blob service URL")
	}
	p, err := url.Parse(u)
	if err != nil || p.Host == "" || p.Scheme != "https" && p.Scheme != "http" {
		return "", fmt.Errorf("%q is not a Blob service URL such as https://myaccount.blob.core.windows.net/", RedactURL(u))
	}
	if err := checkBlobScheme(p); err != nil {
		return "", err
	}
	p.RawQuery, p.Fragment = "", ""
	if !strings.HasSuffix(p.Path, "/") {
		p.Path += "/"
	}
	return p.String(), nil
}

// checkBlobScheme refuses a Blob service URL in http off loopback: its
// requests carry a SAS token or a bearer token, or are signed with the
// account key, and carry the data, which http would send in clear text.
// http is accepted on loopback only (Azurite, a local proxy).
func checkBlobScheme(u *url.URL) error {
	if u.Scheme == "http" && !azure.IsLoopback(u.Hostname()) {
		return fmt.Errorf("%q uses http, which would send the data and the credentials in clear text: use https (http is accepted on loopback only: 127.0.0.1, ::1, localhost)", RedactURL(u.String()))
	}
	return nil
}

// RedactURL drops the query of a URL, where a SAS token would be.
func RedactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		u.RawQuery = ""
		return u.String()
	}
	if i := strings.IndexByte(s, '?'); i >= 0 {
		return s[:i]
	}
	return s
}

// Storage reaches the blob containers that file outputs and state files
// are published into; package azureblob implements it. Local paths need no
// Storage.
type Storage interface {
	// Folder returns the folder of container, under the blob name prefix
	// (empty, or ending in /), of the account acct. It makes no request: a
	// refused credential or a missing container are reported by the
	// folder's first operation.
	Folder(ctx context.Context, acct BlobAccount, container, prefix string, opts BlobOptions) (Folder, error)
}

// Prober is a Folder that can check, without publishing anything, that a
// file could be published: a blob container (see azureblob.Container.Probe).
type Prober interface {
	Probe(ctx context.Context, name string) (exists bool, err error)
}

// Environment variables read for blob outputs.
const (
	envConnectionString = "AZURE_STORAGE_CONNECTION_STRING"
	envAccount          = "AZURE_STORAGE_ACCOUNT"
)

// location is a rendered output path, classified.
type location struct {
	blob      bool
	local     string // local: absolute path
	container string // blob
	name      string // blob name
	service   string // blob, from an https URL: https://<host>/
	account   string // blob, from an https URL
}

var (
	containerRE = regexp.MustCompile(`^(\$root|\$web|[a-z0-9](?:[a-z0-9]|-[a-z0-9]){2,62})$`)
)

// IsBlobPath reports whether a rendered output path names a blob rather
// than a local file.
func IsBlobPath(p string) bool {
	loc, err := parseLocation(p)
	return err == nil && loc.blob
}

// CheckPath checks the shape of a rendered output path: a local path, or
// a blob path that names a valid container and blob.
func CheckPath(p string) error {
	_, err := parseLocation(p)
	return err
}

// parseLocation classifies a rendered output path: az://<container>/<blob
// name>, https://<account>.blob.<suffix>/<container>/<blob name>, or a
// local path (made absolute). A blob path must name a container and a blob
// whose segments are neither empty nor . or ..; its errors never quote a
// query string (which would hold a SAS token).
func parseLocation(p string) (location, error) {
	scheme, rest, hasScheme := strings.Cut(p, "://")
	if !hasScheme || strings.ContainsAny(scheme, `/\`) || runtime.GOOS == "windows" && len(scheme) == 1 {
		abs, err := filepath.Abs(p)
		if err != nil {
			return location{}, err
		}
		return location{local: abs}, nil
	}
	var op location
	switch strings.ToLower(scheme) {
	case "az":
		if strings.ContainsAny(rest, "?#") || strings.Contains(strings.ToLower(rest), "sig=") {
			return location{}, errors.New("an az:// path cannot carry a query (a SAS token would show in logs and summaries): put the token in storage.sasToken, from ${ENV}")
		}
		op.container, op.name, _ = strings.Cut(rest, "/")
	case "https":
		u, err := url.Parse(p)
		if err != nil {
			return location{}, errors.New("not a valid URL: write https://<account>.blob.core.windows.net/<container>/<path>")
		}
		if u.RawQuery != "" || u.User != nil {
			return location{}, errors.New("the URL carries a query or user information: put the SAS token in storage.sasToken (from ${ENV}), never in the path")
		}
		host := strings.ToLower(u.Hostname())
		account, suffix, _ := strings.Cut(host, ".")
		if !strings.HasPrefix(suffix, "blob.") || net.ParseIP(host) != nil {
			return location{}, fmt.Errorf("%s is not a Blob service host (<account>.blob.core.windows.net): for another endpoint write az://<container>/<path> and set storage.endpoint", host)
		}
		op.account, op.service = account, "https://"+u.Host+"/"
		op.container, op.name, _ = strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	case "http":
		return location{}, errors.New("blob paths use https: write https://<account>.blob.core.windows.net/..., or az://<container>/<path> with storage.endpoint for an emulator")
	default:
		return location{}, fmt.Errorf("unknown scheme %s://: write a local path, az://<container>/<path> or https://<account>.blob.core.windows.net/<container>/<path>", scheme)
	}
	op.blob = true
	switch {
	case op.container == "":
		return location{}, errors.New("no container: write az://<container>/<path>")
	case strings.Contains(op.container, PartMarker):
		return location{}, errors.New("{{ .part }} must be in the blob's path, not in the container name")
	case !containerRE.MatchString(op.container):
		return location{}, fmt.Errorf("%q is not a container name: 3 to 63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit", op.container)
	case op.name == "":
		return location{}, fmt.Errorf("no blob path after the container: write az://%s/<path>", op.container)
	}
	if err := CheckBlobName(op.name); err != nil {
		return location{}, err
	}
	return op, nil
}

// CheckBlobName refuses a blob name the service would take for another path
// (an empty, . or .. segment, a leading /) or refuse (over 1024 characters).
func CheckBlobName(name string) error {
	switch {
	case name == "":
		return errors.New("empty blob name")
	case len(name) > 1024:
		return fmt.Errorf("the blob name is %d characters long, more than the 1024 allowed", len(name))
	case strings.HasPrefix(name, "/"):
		return errors.New("the blob name starts with /: an absolute name, or an empty segment after the container")
	case strings.ContainsRune(name, '\\'):
		return errors.New(`the blob name holds a \: use / between folders`)
	}
	for _, seg := range strings.Split(name, "/") {
		switch seg {
		case "":
			return errors.New("the blob name has an empty segment (// or a trailing /)")
		case ".", "..":
			return fmt.Errorf("the blob name has a %q segment", seg)
		}
	}
	return nil
}

// ManifestPath is where the manifest of a split output whose rendered path
// is p goes: the folder of its name up to the part number. ok is false
// when p is not a valid path.
func ManifestPath(p string) (string, bool) {
	op, err := parseLocation(p)
	if err != nil {
		return "", false
	}
	full := op.local
	if op.blob {
		full = "az://" + op.container + "/" + op.name
	}
	i := strings.Index(full, PartMarker)
	if i < 0 {
		return full, true
	}
	return full[:strings.LastIndexAny(full[:i], string(filepath.Separator)+"/")+1] + ManifestName, true
}

// Resolver places the file outputs and state files of one job: on the
// local disk, or in Azure Blob Storage with the account and credential the
// job's storage block (or the environment) names. It reads the environment
// but makes no request.
type Resolver struct {
	Job     string
	Storage *StorageSpec // the job's storage block; nil when it has none
	// Auth and Cloud are storage.auth's and storage.cloud's defaults: the
	// Power BI source's auth block (nil: DefaultAzureCredential) and cloud.
	Auth  *azure.AuthSpec
	Cloud string
}

// fileTarget is where and how a file output publishes. It holds the
// credentials of a blob account: it must never be printed (String shows
// its location only).
type fileTarget struct {
	location string // absolute path or URL, with PartMarker in a split output's; no secret
	out      OutputOptions
	job      string // recorded in a split output's manifest and in blob metadata

	// The folder and the name (or, split, the part name pattern) within
	// it, with / between subfolders.
	dir  string // local folder
	name string

	blob       bool
	container  string
	prefix     string // blob name prefix of the folder
	acct       BlobAccount
	method     string // how the credential was chosen, for plans and checks
	blobOpts   BlobOptions
	resolveErr error // a blob account that cannot be resolved: reported at open
}

func (t *fileTarget) String() string { return t.location }

// file works out where a rendered path publishes: a local folder, or a
// blob container with the account and credential to reach it. A blob
// account that cannot be resolved is reported when the output opens.
func (r Resolver) file(path string, out OutputOptions) (*fileTarget, error) {
	op, err := parseLocation(path)
	if err != nil {
		return nil, err
	}
	t := &fileTarget{out: out, job: r.Job}
	full := op.local
	if op.blob {
		full = op.name
	}
	marker := strings.Index(full, PartMarker)
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
	st := r.Storage
	if st == nil {
		st = &StorageSpec{}
	}
	t.blobOpts = BlobOptions{BlockSize: st.BlockSize, Concurrency: st.Concurrency, Job: r.Job}
	t.location = "az://" + op.container + "/" + op.name
	t.acct, t.method, t.resolveErr = r.account(st, op)
	if t.resolveErr == nil {
		if ep, err := t.acct.Endpoint(); err == nil {
			t.location = ep + op.container + "/" + op.name
		}
	}
	return t, nil
}

// account chooses the Blob endpoint and the credential.
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
func (r Resolver) account(st *StorageSpec, op location) (acct BlobAccount, method string, err error) {
	cloudName := st.Cloud
	if cloudName == "" {
		cloudName = r.Cloud
	}
	cloud, err := azure.LookupCloud(cloudName)
	if err != nil {
		return BlobAccount{}, "", fmt.Errorf("storage.cloud: %w", err)
	}
	service := op.service
	if st.Endpoint != "" {
		ep, err := BlobAccount{ServiceURL: st.Endpoint}.Endpoint()
		if err != nil {
			return BlobAccount{}, "", fmt.Errorf("storage.endpoint: %w", err)
		}
		if service != "" && !sameEndpoint(ep, service) {
			return BlobAccount{}, "", fmt.Errorf("the path names %s but storage.endpoint is %s: give one of them", service, ep)
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
		ep, err := BlobAccount{ConnectionString: envCS}.Endpoint()
		if err != nil {
			return BlobAccount{}, "", fmt.Errorf("%s: %w", envConnectionString, err)
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
			return BlobAccount{}, "", fmt.Errorf("no storage account for %s: set storage.account (or storage.endpoint, storage.connectionString), or %s or %s in the environment", "az://"+op.container+"/"+op.name, envConnectionString, envAccount)
		}
	}
	acct = BlobAccount{ServiceURL: service}
	switch {
	case st.ConnectionString != "" || useEnvCS:
		cs := st.ConnectionString
		method = "connection string from storage.connectionString"
		if cs == "" {
			cs, method = envCS, "connection string from "+envConnectionString
		}
		ep, err := BlobAccount{ConnectionString: cs}.Endpoint()
		if err != nil {
			return BlobAccount{}, "", fmt.Errorf("storage.connectionString: %w", err)
		}
		if service != "" && !sameEndpoint(ep, service) {
			return BlobAccount{}, "", fmt.Errorf("the connection string reaches %s, not %s", ep, service)
		}
		acct.ConnectionString = cs
	case st.SASToken != "":
		acct.SASToken, method = st.SASToken, "SAS token from storage.sasToken"
	case st.AccountKey != "":
		name := st.Account
		if name == "" {
			name = accountFromEndpoint(service)
		}
		if name == "" {
			name = os.Getenv(envAccount)
		}
		if name == "" {
			return BlobAccount{}, "", errors.New("storage.accountKey: the account name is not known: set storage.account")
		}
		acct.AccountName, acct.AccountKey, method = name, st.AccountKey, "account key from storage.accountKey"
	case st.Auth != nil:
		acct.Entra, acct.Cloud, acct.EntraField, method = st.Auth, cloud.Name, "storage.auth", "Entra ID from storage.auth"
	case r.Auth != nil:
		acct.Entra, acct.Cloud, acct.EntraField, method = r.Auth, cloud.Name, "source.powerbi.auth", "Entra ID from source.powerbi.auth"
	default:
		acct.Entra, acct.Cloud, acct.EntraField, method = &azure.AuthSpec{Method: azure.MethodDefault}, cloud.Name, "storage.auth", "Entra ID from the environment (DefaultAzureCredential)"
	}
	return acct, method, nil
}

// folder returns the Folder the output publishes into.
func (t *fileTarget) folder(ctx context.Context, storage Storage) (Folder, error) {
	if !t.blob {
		return LocalFolder(t.dir)
	}
	if t.resolveErr != nil {
		return nil, t.resolveErr
	}
	if storage == nil {
		return nil, fmt.Errorf("%s: this command cannot reach Azure Blob Storage", t.location)
	}
	return storage.Folder(ctx, t.acct, t.container, t.prefix, t.blobOpts)
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

// StateFolder returns the folder and the name of a state file at path (a
// local path or a blob URL), placed as the job's outputs are.
func (r Resolver) StateFolder(ctx context.Context, storage Storage, path string) (Folder, string, error) {
	t, err := r.file(path, OutputOptions{Overwrite: true})
	if err != nil {
		return nil, "", fmt.Errorf("state path %s: %w", path, err)
	}
	f, err := t.folder(ctx, storage)
	if err != nil {
		return nil, "", fmt.Errorf("state path %s: %w", path, err)
	}
	return f, t.name, nil
}
