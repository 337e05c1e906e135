package sink

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseConnectionString(t *testing.T) {
	for _, c := range []struct {
		in   string
		want connString
		err  string
	}{
		{in: "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.windows.net",
			want: connString{endpoint: "https://acct.blob.core.windows.net", account: "acct", key: "a2V5"}},
		{in: "AccountName=acct;AccountKey=a2V5==;EndpointSuffix=core.chinacloudapi.cn;",
			want: connString{endpoint: "https://acct.blob.core.chinacloudapi.cn", account: "acct", key: "a2V5=="}},
		{in: "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;SharedAccessSignature=sv=2024&sig=abc%2B",
			want: connString{endpoint: "http://127.0.0.1:10000/devstoreaccount1", sas: "sv=2024&sig=abc%2B"}},
		{in: "UseDevelopmentStorage=true",
			want: connString{endpoint: "http://127.0.0.1:10000/devstoreaccount1", account: "devstoreaccount1", key: azuriteKey}},
		{in: "AccountKey=c2VjcmV0LWtleQ==", err: "names no account"},
		{in: "AccountName=acct", err: "holds no credential"},
		{in: "AccountName=acct;c2VjcmV0LWtleQ", err: "Name=value"},
	} {
		got, err := parseConnectionString(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want %q", c.in, err, c.err)
			}
			if err != nil && strings.Contains(err.Error(), "c2VjcmV0LWtleQ") {
				t.Errorf("%q: the error quotes the key: %v", c.in, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q: %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}

func TestBlobAccountEndpoint(t *testing.T) {
	for _, c := range []struct {
		acct BlobAccount
		want string
	}{
		{BlobAccount{ServiceURL: "https://acct.blob.core.windows.net"}, "https://acct.blob.core.windows.net/"},
		{BlobAccount{ServiceURL: "http://127.0.0.1:10000/devstoreaccount1/?sv=x&sig=y"}, "http://127.0.0.1:10000/devstoreaccount1/"},
		{BlobAccount{ConnectionString: "UseDevelopmentStorage=true"}, "http://127.0.0.1:10000/devstoreaccount1/"},
	} {
		if got, err := c.acct.Endpoint(); err != nil || got != c.want {
			t.Errorf("%+v: %q, %v; want %q", c.acct, got, err, c.want)
		}
	}
	if _, err := (BlobAccount{ServiceURL: "ftp://x?sig=secretsig"}).Endpoint(); err == nil || strings.Contains(err.Error(), "secretsig") {
		t.Errorf("ftp endpoint: %v", err)
	}
	if m := (BlobAccount{SASToken: "x"}).Method(); m != "SAS token" {
		t.Errorf("method %q", m)
	}
}

func TestCheckBlobName(t *testing.T) {
	for name, want := range map[string]string{
		"a/b/c.parquet":           "",
		"date=2024-01-01/x.csv":   "",
		"part-{{.part}}.parquet":  "",
		"":                        "empty",
		"/a":                      "starts with /",
		"a//b":                    "empty segment",
		"a/":                      "empty segment",
		"a/../b":                  `".."`,
		"./a":                     `"."`,
		`a\b`:                     `\`,
		strings.Repeat("n", 1025): "1024",
	} {
		err := CheckBlobName(name)
		switch {
		case want == "" && err != nil:
			t.Errorf("%q: %v", name, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%q: error %v, want %q", name, err, want)
		}
	}
}

func TestBlobOptionsValidate(t *testing.T) {
	if err := (BlobOptions{}).Validate(); err != nil {
		t.Error(err)
	}
	err := BlobOptions{BlockSize: 1000, Concurrency: 65}.Validate()
	if err == nil || !strings.Contains(err.Error(), "blockSize: 1000 is out of range") || !strings.Contains(err.Error(), "concurrency: 65") {
		t.Errorf("error %v", err)
	}
	if err := (BlobOptions{BlockSize: MaxBlockSize + 1}).Validate(); err == nil {
		t.Error("a block over 4000 MiB accepted")
	}
}

// TestBlobRedaction checks that the secrets of an account, in any of their
// encodings, and any SAS signature, are masked in errors.
func TestBlobRedaction(t *testing.T) {
	const key = "a2V5LWZvci10ZXN0cw+/a2V5=="
	const sig = "c2lnbmF0dXJl+/sig="
	acct := BlobAccount{
		SASToken:         "?sv=2024-01-01&sp=rcw&sig=" + url.QueryEscape(sig),
		AccountKey:       key,
		ConnectionString: "AccountName=acct;AccountKey=" + key,
	}
	c := &BlobContainer{secrets: acct.secrets()}
	for _, text := range []string{
		"PUT https://acct.blob.core.windows.net/c/b?comp=block&sig=" + url.QueryEscape(sig) + ": dial tcp: refused",
		"the signature " + sig + " did not match",
		"key " + key + " and " + url.QueryEscape(key),
		"another SAS: https://x/y?sv=1&sig=OTHERSIGNATURE&se=2",
	} {
		err := c.redactErr(errors.New(text))
		for _, secret := range []string{sig, url.QueryEscape(sig), key, url.QueryEscape(key), "OTHERSIGNATURE"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%q: the secret %q is shown: %v", text, secret, err)
			}
		}
		if !strings.Contains(err.Error(), "[REDACTED]") {
			t.Errorf("%q: nothing masked: %v", text, err)
		}
	}
	inner := context.Canceled
	err := c.redactErr(fmt.Errorf("with %s: %w", key, inner))
	if !errors.Is(err, context.Canceled) {
		t.Error("redaction lost the wrapped error")
	}
	ue := &url.Error{Op: "Put", URL: "https://acct.blob.core.windows.net/c/b?sv=1&sig=abc", Err: errors.New("EOF")}
	if got := describeAzure(ue).Error(); got != `Put https://acct.blob.core.windows.net/c/b: EOF` {
		t.Errorf("url error: %s", got)
	}
}

func TestOpenLocalNew(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.csv")
	dst, err := OpenLocalNew(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Write([]byte("a\n")); err != nil {
		t.Fatal(err)
	}
	f, err := dst.Commit(context.Background(), 1)
	if err != nil || f.Rows != 1 || f.Bytes != 2 {
		t.Fatalf("Commit: %+v, %v", f, err)
	}
	if _, err := OpenLocalNew(path); !errors.Is(err, ErrExists) {
		t.Errorf("OpenLocalNew over a file: %v", err)
	}
	// A file appearing between Open and Commit is left alone.
	other := filepath.Join(dir, "other.csv")
	dst, err = OpenLocalNew(other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Write([]byte("mine")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, other, "theirs")
	if _, err := dst.Commit(context.Background(), 1); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), other) {
		t.Errorf("Commit over a file created meanwhile: %v", err)
	}
	if got := readFile(t, other); got != "theirs" {
		t.Errorf("the other file holds %q", got)
	}
	if names := tempFiles(t, dir, "out.csv", "other.csv"); len(names) > 0 {
		t.Errorf("files left: %q", names)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm()&0o044 == 0 {
		t.Errorf("published file: %v, %v", fi, err)
	}
}
