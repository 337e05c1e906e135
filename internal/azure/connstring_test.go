package azure

import (
	"strings"
	"testing"
)

func TestParseConnectionString(t *testing.T) {
	for _, c := range []struct {
		in   string
		want ConnectionString
		err  string
	}{
		{in: "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.windows.net",
			want: ConnectionString{Endpoint: "https://acct.blob.core.windows.net", Account: "acct", Key: "a2V5"}},
		{in: "AccountName=acct;AccountKey=a2V5==;EndpointSuffix=core.chinacloudapi.cn;",
			want: ConnectionString{Endpoint: "https://acct.blob.core.chinacloudapi.cn", Account: "acct", Key: "a2V5=="}},
		{in: "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;SharedAccessSignature=sv=2024&sig=abc%2B",
			want: ConnectionString{Endpoint: "http://127.0.0.1:10000/devstoreaccount1", SAS: "sv=2024&sig=abc%2B"}},
		{in: "UseDevelopmentStorage=true",
			want: ConnectionString{Endpoint: "http://127.0.0.1:10000/devstoreaccount1", Account: "devstoreaccount1", Key: AzuriteKey}},
		{in: "AccountKey=c2VjcmV0LWtleQ==", err: "names no account"},
		{in: "AccountName=acct", err: "holds no credential"},
		{in: "AccountName=acct;c2VjcmV0LWtleQ", err: "Name=value"},
	} {
		got, err := ParseConnectionString(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want %q", c.in, err, c.err)
			}
			if err != nil && strings.Contains(err.Error(), "c2VjcmV0LWtleQ") {
				t.Errorf("%q: the error quotes the Key: %v", c.in, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q: %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}
