package powerbi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/apache/arrow-go/v18/arrow"

	"github.com/pbicopy/pbicopy/internal/azure/credential"
	"github.com/pbicopy/pbicopy/internal/fakepbi"
	"github.com/pbicopy/pbicopy/mapping"
	"github.com/pbicopy/pbicopy/source"
)

// writeFakeResponse saves the body the fake sends for EVALUATE Sales of
// its benchmark table of rows rows, under opts' limits.
func writeFakeResponse(t *testing.T, rows int, opts fakepbi.Options) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "response.json")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := fakepbi.WriteResponse(f, []*fakepbi.Table{fakepbi.BenchTable(rows)}, "EVALUATE Sales", true, opts); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSavedResponseCutAt15MBIsRefused: a saved response the service cut
// silently at its 15 MB limit (no error object) fails as a live one does.
func TestSavedResponseCutAt15MBIsRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and decodes 16 MB")
	}
	path := writeFakeResponse(t, 60_000, fakepbi.Options{}) // the real limits: cut at 15 MiB, no error
	fi, _ := os.Stat(path)
	rows := &nopRows{}
	st, err := ReadFile(context.Background(), path, rows)
	var le *LimitError
	if !errors.As(err, &le) || le.Overrun || le.Value != 0 {
		t.Fatalf("err = %v, want a LimitError for a response cut at the limit", err)
	}
	if st.Bytes != fi.Size() || st.Rows != int64(rows.rows) || st.Rows >= 60_000 || st.Rows < 50_000 {
		t.Errorf("stats %+v for a %d-byte file, %d rows received", st, fi.Size(), rows.rows)
	}
	for _, want := range []string{"15 MB", "MiB", "nothing was published", path} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "RequestId") {
		t.Errorf("a saved response has no RequestId: %v", err)
	}
}

// TestFileSourceAppliesTheConnectorsLimit: the file source applies the
// same limit as the live source of the same connector.
func TestFileSourceAppliesTheConnectorsLimit(t *testing.T) {
	cut := writeFakeResponse(t, 2000, fakepbi.Options{MaxBytes: 100_000})  // cut silently after 100,000 bytes of rows
	whole := writeFakeResponse(t, 200, fakepbi.Options{MaxBytes: 100_000}) // about 60,000 bytes: whole
	conn := &Connector{ResultBytes: 100_000}
	read := func(path string) (source.Stats, *recvCounter, error) {
		src, err := conn.Open(context.Background(), source.Request{Spec: source.Spec{File: path}, Columns: benchTableColumns, Mem: checkedMem(t)})
		if err != nil {
			t.Fatal(err)
		}
		r := &recvCounter{}
		st, err := src.Read(context.Background(), r)
		return st, r, err
	}
	st, r, err := read(cut)
	var le *LimitError
	if !errors.As(err, &le) || st.Rows == 0 || st.Rows >= 2000 {
		t.Errorf("cut file: %+v, %v; want a LimitError after some rows", st, err)
	}
	if r.rows != 0 {
		t.Errorf("cut file: %d rows reached the receiver, want none (the last batch is never flushed)", r.rows)
	}
	if st, r, err := read(whole); err != nil || st.Rows != 200 || r.rows != 200 {
		t.Errorf("whole file: %+v, %d rows, %v", st, r.rows, err)
	}
}

// recvCounter is a source.Receiver that counts and releases batches.
type recvCounter struct{ rows int64 }

func (r *recvCounter) Schema(*arrow.Schema, []string) error { return nil }
func (r *recvCounter) Batch(rec arrow.RecordBatch) error {
	r.rows += rec.NumRows()
	rec.Release()
	return nil
}

// endlessRows is a body that never ends: the envelope, then rows forever
// (it fails the read after 32 MiB, so that a decoder that does not stop
// fails the test instead of hanging it).
type endlessRows struct {
	head bool
	row  []byte
	n    int64 // bytes produced
}

func (e *endlessRows) Read(p []byte) (int, error) {
	if e.n > 32<<20 {
		return 0, errors.New("test body: 32 MiB read, the decoder did not stop")
	}
	n := 0
	if !e.head {
		e.head = true
		n = copy(p, `{"results":[{"tables":[{"rows":[`)
	}
	for n+len(e.row) <= len(p) {
		n += copy(p[n:], e.row)
	}
	e.n += int64(n)
	return n, nil
}

// TestResponsePastTheLimitStopsAtOnce: a response that goes on past the
// limit further than the service sends (it completes the row that crosses
// the limit, then stops) is refused there, not after reading all of it:
// here the body never ends.
func TestResponsePastTheLimitStopsAtOnce(t *testing.T) {
	body := &endlessRows{row: []byte(`{"T[id]":123456,"T[name]":"a name"},`)}
	lim := limitsFor(100_000)
	st, err := decode(body, &nopRows{}, lim)
	var le *LimitError
	if !errors.As(err, &le) || !le.Overrun || le.Rows != st.Rows || le.Bytes != st.Bytes {
		t.Fatalf("err = %v (%+v), want an overrun LimitError", err, st)
	}
	if st.Bytes < lim.overrun() || st.Bytes > lim.overrun()+128<<10 {
		t.Errorf("read %d bytes, want a little past %d", st.Bytes, lim.overrun())
	}
	if !strings.Contains(err.Error(), "further than the service ever sends") {
		t.Errorf("message: %v", err)
	}

	// One endless row: stopped at the ceiling.
	row := &endlessRows{row: []byte(`"T[x]":1,`)}
	row.head = true
	st, err = decode(io.MultiReader(strings.NewReader(`{"results":[{"tables":[{"rows":[{`), row), &nopRows{}, lim)
	if !errors.As(err, &le) || !le.Overrun || st.Bytes > lim.ceiling()+128<<10 {
		t.Errorf("endless row: %v after %d bytes (ceiling %d)", err, st.Bytes, lim.ceiling())
	}
}

// TestLiveResponsePastTheLimitStopsAtOnce: the same over HTTP, against a
// fake that does not cut at the limit.
func TestLiveResponsePastTheLimitStopsAtOnce(t *testing.T) {
	srv := startFake(t, fakepbi.Options{Tables: []*fakepbi.Table{fakepbi.BenchTable(20_000)}, MaxRows: -1, MaxValues: -1, MaxBytes: -1})
	o := srv.Options()
	pb, err := NewClient(Config{Endpoint: srv.URL(), Credential: mustCredential(t, srv), HTTPClient: srv.Client(), ResultBytes: 200_000})
	if err != nil {
		t.Fatal(err)
	}
	rows := &nopRows{}
	st, err := pb.ExecuteQuery(context.Background(), Query{Workspace: o.WorkspaceID, Dataset: o.DatasetID, DAX: "EVALUATE Sales"}, rows)
	var le *LimitError
	if !errors.As(err, &le) || !le.Overrun || le.RequestID == "" || source.Retryable(err) {
		t.Fatalf("err = %v, want a LimitError (overrun, with its RequestId, not retryable)", err)
	}
	if st.Bytes > limitsFor(200_000).overrun()+128<<10 || st.Rows >= 20_000 {
		t.Errorf("read %d bytes, %d rows of a 6 MB response: want it stopped near %d", st.Bytes, st.Rows, limitsFor(200_000).overrun())
	}
}

// TestHugeValueIsRefusedEarly: a value larger than its bound stops the
// decoder before it is held: here a string that never ends.
func TestHugeValueIsRefusedEarly(t *testing.T) {
	lim := limits{resultBytes: 1 << 30, valueBytes: 64 << 10, errorBytes: 4 << 10}
	endless := &endlessRows{row: []byte("abcdefgh"), head: true}
	body := io.MultiReader(strings.NewReader(`{"results":[{"tables":[{"rows":[{"T[id]":1},{"T[id]":2,"T[s]":"`), endless)
	st, err := decode(body, &nopRows{}, lim)
	var le *LimitError
	if !errors.As(err, &le) || le.Value != 64<<10 || le.Rows != 1 {
		t.Fatalf("err = %v, want a LimitError for the value of row 2", err)
	}
	if st.Bytes > 256<<10 {
		t.Errorf("read %d bytes for a value bound of 64 KiB", st.Bytes)
	}
	if !strings.Contains(err.Error(), "a single name or value larger than 65536 bytes came after 1 rows") {
		t.Errorf("message: %v", err)
	}
	// A key is bounded the same way.
	endless = &endlessRows{row: []byte("abcdefgh"), head: true}
	_, err = decode(io.MultiReader(strings.NewReader(`{"results":[{"tables":[{"rows":[{"`), endless), &nopRows{}, lim)
	if !errors.As(err, &le) || le.Value == 0 {
		t.Errorf("endless key: %v", err)
	}
	// Values up to the bound pass.
	v := strings.Repeat("x", 60<<10)
	rec, _, err := decodeStringLim(t, `{"results":[{"tables":[{"rows":[{"T[s]":"`+v+`"}]}]}]}`, lim)
	if err != nil || len(rec.rows) != 1 || len(rec.rows[0][0][1]) != len(v)+2 {
		t.Errorf("a 60 KiB value: %v", err)
	}
}

func decodeStringLim(t *testing.T, body string, lim limits) (*recorder, DecodeStats, error) {
	t.Helper()
	rec := &recorder{}
	st, err := decode(strings.NewReader(body), rec, lim)
	return rec, st, err
}

// TestErrorTextIsBounded: an error slot is read up to its bound, and the
// message quotes at most maxMessageBytes of the service's text.
func TestErrorTextIsBounded(t *testing.T) {
	lim := limits{resultBytes: 1 << 30, valueBytes: 1 << 20, errorBytes: 8 << 10}
	long := strings.Repeat("é", 3000) // 6,000 bytes: within the slot's bound
	_, _, err := decodeStringLim(t, `{"results":[{"tables":[{"rows":[],"error":{"code":"X","message":"`+long+`"}}]}]}`, lim)
	var se *ServiceError
	if !errors.As(err, &se) || se.Message != long {
		t.Fatalf("err = %v, want the ServiceError", err)
	}
	if msg := err.Error(); len(msg) > maxMessageBytes+300 || !strings.Contains(msg, "…(6000 bytes)") || !strings.Contains(msg, "(code X)") {
		t.Errorf("message of %d bytes: %.200s...", len(msg), msg)
	}
	// Beyond the slot's bound: refused while reading, not held.
	endless := &endlessRows{row: []byte("abcdefgh"), head: true}
	st, err := decode(io.MultiReader(strings.NewReader(`{"results":[{"tables":[{"rows":[],"error":{"message":"`), endless), &nopRows{}, lim)
	if err == nil || !strings.Contains(err.Error(), "table error slot is larger than 8192 bytes") || st.Bytes > 128<<10 {
		t.Errorf("endless error message: %v after %d bytes", err, st.Bytes)
	}
	// An HTTP error answer is clipped too.
	ae := &APIError{Status: 400, Code: "X", Message: strings.Repeat("m", 1<<20)}
	if len(ae.Error()) > maxMessageBytes+300 {
		t.Errorf("APIError message of %d bytes", len(ae.Error()))
	}
}

// TestPagerDropsTheRowCutByTheGuard: a page refused mid-row by the guard
// is continued after its last complete row, its incomplete row dropped.
func TestPagerDropsTheRowCutByTheGuard(t *testing.T) {
	mem := checkedMem(t)
	out := newCollector(t)
	cols := []mapping.Column{{From: "T[id]", To: "id", Type: mapping.Type{Kind: mapping.Int64}}, {From: "T[s]", To: "s", Type: mapping.Type{Kind: mapping.String}}}
	b := NewBuilder(mem, cols, mapping.UnmappedError, 0, out.emit)
	defer b.Release()
	lim := limits{resultBytes: 1 << 30, valueBytes: 1 << 10, errorBytes: 1 << 10}
	calls := 0
	pg := &pager{table: "T", key: "T[id]", n: 4, log: discardLog(), exec: func(_ context.Context, dax string, recv rowReceiver) (QueryStats, error) {
		calls++
		var body string
		switch calls {
		case 1: // row 3's second value is too large
			body = `{"results":[{"tables":[{"rows":[{"T[id]":1,"T[s]":"a"},{"T[id]":2,"T[s]":"b"},{"T[id]":3,"T[s]":"` + strings.Repeat("x", 4<<10) + `"}]}]}]}`
		default: // after key 2, in pages of 2
			if !strings.Contains(dax, "> 2") {
				t.Errorf("page 2 query %q does not continue after key 2", dax)
			}
			body = `{"results":[{"tables":[{"rows":[{"T[id]":3,"T[s]":"c"}]}]}]}`
		}
		ds, err := decode(strings.NewReader(body), recv, lim)
		return QueryStats{DecodeStats: ds}, err
	}}
	if _, err := pg.run(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := out.column(t, 1); len(got) != 3 || got[0] != "a" || got[1] != "b" || got[2] != "c" {
		t.Errorf("rows %v, want a b c", got)
	}
}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// mustCredential is a real client-secret credential for the fake's Entra ID.
func mustCredential(t *testing.T, srv *fakepbi.Server) azcore.TokenCredential {
	t.Helper()
	o := srv.Options()
	cred, err := credential.Build(credential.Config{Tenant: o.TenantID, ClientID: o.ClientID, ClientSecret: o.ClientSecret, AuthorityHost: srv.AuthorityHost()}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return cred
}
