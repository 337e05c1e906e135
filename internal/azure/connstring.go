package azure

import (
	"errors"
	"strings"
)

// ConnectionString is what an Azure Storage connection string says of the
// Blob service.
type ConnectionString struct {
	Endpoint string // Blob service URL
	Account  string
	Key      string // account key (base64)
	SAS      string // shared access signature
}

// The well-known Azurite development account (published by Microsoft).
const (
	AzuriteAccount  = "devstoreaccount1"
	AzuriteKey      = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
	AzuriteEndpoint = "http://127.0.0.1:10000/devstoreaccount1"
)

// ParseConnectionString reads the fields of a connection string that
// concern the Blob service: it must name an account (or a Blob endpoint)
// and hold a credential. Its errors never quote the string.
func ParseConnectionString(s string) (ConnectionString, error) {
	fields := map[string]string{}
	for _, part := range strings.Split(strings.TrimSpace(s), ";") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return ConnectionString{}, errors.New("connection string: every part must be Name=value, separated by ;")
		}
		fields[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
	}
	if strings.EqualFold(fields["usedevelopmentstorage"], "true") {
		ep := AzuriteEndpoint
		if proxy := fields["developmentstorageproxyuri"]; proxy != "" {
			ep = strings.TrimSuffix(proxy, "/") + ":10000/" + AzuriteAccount
		}
		return ConnectionString{Endpoint: ep, Account: AzuriteAccount, Key: AzuriteKey}, nil
	}
	cs := ConnectionString{Account: fields["accountname"], Key: fields["accountkey"], SAS: fields["sharedaccesssignature"]}
	switch ep := fields["blobendpoint"]; {
	case ep != "":
		cs.Endpoint = ep
	case cs.Account != "":
		proto := fields["defaultendpointsprotocol"]
		if proto == "" {
			proto = "https"
		}
		suffix := fields["endpointsuffix"]
		if suffix == "" {
			suffix = "core.windows.net"
		}
		cs.Endpoint = proto + "://" + cs.Account + ".blob." + suffix
	default:
		return ConnectionString{}, errors.New("connection string: it names no account: give AccountName or BlobEndpoint")
	}
	switch {
	case cs.Key != "" && cs.Account == "":
		return ConnectionString{}, errors.New("connection string: AccountKey needs AccountName")
	case cs.Key == "" && cs.SAS == "":
		return ConnectionString{}, errors.New("connection string: it holds no credential: give AccountKey or SharedAccessSignature")
	}
	return cs, nil
}
