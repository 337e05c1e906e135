package fakepbi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// startServer starts a fake with opts and closes it when the test ends.
func startServer(t testing.TB, opts Options) *Server {
	t.Helper()
	srv, err := Start(opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// getToken asks the token endpoint for a token with the server's own
// credentials, by a plain form post.
func getToken(t testing.TB, srv *Server) string {
	t.Helper()
	o := srv.Options()
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {o.ClientID},
		"client_secret": {o.ClientSecret},
		"scope":         {PowerBIScope},
	}
	resp, err := srv.Client().PostForm(srv.AuthorityHost()+o.TenantID+"/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || resp.StatusCode != 200 || tr.AccessToken == "" {
		t.Fatalf("token: status %d, err %v", resp.StatusCode, err)
	}
	return tr.AccessToken
}

// queryURL is the executeQueries URL of the server's workspace and dataset.
func queryURL(srv *Server) string {
	o := srv.Options()
	return srv.URL() + "/v1.0/myorg/groups/" + o.WorkspaceID + "/datasets/" + o.DatasetID + "/executeQueries"
}

// requestBody builds an executeQueries body for one query.
func queryBody(query string, includeNulls bool) string {
	b, _ := json.Marshal(map[string]any{
		"queries":            []map[string]string{{"query": query}},
		"serializerSettings": map[string]bool{"includeNulls": includeNulls},
	})
	return string(b)
}

// post sends body to u with the bearer token tok (none when empty) and
// returns the response and its whole body.
func post(t testing.TB, client *http.Client, u, tok, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, b
}

// runQuery runs query on srv and fails the test unless the answer is 200.
func runQuery(t testing.TB, srv *Server, tok, query string, includeNulls bool) []byte {
	t.Helper()
	resp, b := post(t, srv.Client(), queryURL(srv), tok, queryBody(query, includeNulls))
	if resp.StatusCode != 200 {
		t.Fatalf("%s: status %d: %s", query, resp.StatusCode, b)
	}
	return b
}

type errorObj struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// result is a decoded executeQueries body.
type result struct {
	Results []struct {
		Tables []struct {
			Rows  []json.RawMessage `json:"rows"`
			Error *errorObj         `json:"error"`
		} `json:"tables"`
		Error *errorObj `json:"error"`
	} `json:"results"`
	Error *errorObj `json:"error"`

	decoded []map[string]any
}

// decode decodes a body (BOM stripped) with numbers as json.Number,
// failing on anything but one result with one table.
func decode(t testing.TB, body []byte) *result {
	t.Helper()
	body = bytes.TrimPrefix(body, []byte(bom))
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var r result
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("decode: %v\n%s", err, body)
	}
	if dec.More() {
		t.Fatalf("trailing data after the body")
	}
	if len(r.Results) != 1 || len(r.Results[0].Tables) != 1 {
		t.Fatalf("want one result with one table: %s", body)
	}
	return &r
}

// count returns the number of rows.
func (r *result) count() int { return len(r.Results[0].Tables[0].Rows) }

// rows returns the rows decoded, numbers as json.Number.
func (r *result) rows() []map[string]any {
	if r.decoded == nil {
		r.decoded = []map[string]any{}
		for _, raw := range r.Results[0].Tables[0].Rows {
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.UseNumber()
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				panic(err)
			}
			r.decoded = append(r.decoded, m)
		}
	}
	return r.decoded
}

// ints returns column key of every row as int64s.
func (r *result) ints(t testing.TB, key string) []int64 {
	t.Helper()
	var out []int64
	for i, row := range r.rows() {
		n, ok := row[key].(json.Number)
		if !ok {
			t.Fatalf("row %d: %s is %v, not a number", i, key, row[key])
		}
		v, err := n.Int64()
		if err != nil {
			t.Fatalf("row %d: %s: %v", i, key, err)
		}
		out = append(out, v)
	}
	return out
}
