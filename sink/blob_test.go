package sink

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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
	for i, acct := range []BlobAccount{
		{ServiceURL: "http://acct.blob.core.windows.net/"},
		{ConnectionString: "BlobEndpoint=http://10.0.0.5/acct;SharedAccessSignature=sv=1&sig=secretsig"},
		{ConnectionString: "DefaultEndpointsProtocol=http;AccountName=acct;AccountKey=a2V5"},
	} {
		if _, err := acct.Endpoint(); err == nil || !strings.Contains(err.Error(), "uses http") || strings.Contains(err.Error(), "secretsig") {
			t.Errorf("http account %d: %v, want a refusal of http", i, err)
		}
	}
	for _, u := range []string{"http://localhost:10000/devstoreaccount1", "http://[::1]:10000/devstoreaccount1", "http://127.0.0.1:10000/x"} {
		if _, err := (BlobAccount{ServiceURL: u}).Endpoint(); err != nil {
			t.Errorf("%s on loopback: %v", u, err)
		}
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
