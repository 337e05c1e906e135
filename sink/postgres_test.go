package sink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pbicopy/pbicopy/internal/sinktest"
)

func TestPostgresOptionsValidate(t *testing.T) {
	no := false
	cases := []struct {
		name string
		opts PostgresOptions
		want []string // substrings of the error; none means valid
	}{
		{"minimal", PostgresOptions{Table: "analytics.sales"}, nil},
		{"unqualified", PostgresOptions{Table: "sales"}, nil},
		{"quoted", PostgresOptions{Table: `"my.schema"."x""; DROP TABLE y; --"`}, nil},
		{"merge", PostgresOptions{Table: "a.b", Mode: "merge", Key: []string{"id", "day"}}, nil},
		{"partition", PostgresOptions{Table: "a.b", Mode: "replacePartition", PartitionColumn: "day"}, nil},
		{"all", PostgresOptions{Table: "a.b", Mode: "replace", PreSQL: "x", PostSQL: "y", CreateTable: &no, SchemaEvolution: "addColumns", StripNul: true}, nil},
		{"lock timeout", PostgresOptions{Table: "a.b", LockTimeout: "1h30m"}, nil},
		{"no table", PostgresOptions{}, []string{"table: required"}},
		{"bad lock timeout", PostgresOptions{Table: "a.b", LockTimeout: "10"}, []string{`lockTimeout: "10" is not a duration such as 30s, 10m or 1h`}},
		{"tiny lock timeout", PostgresOptions{Table: "a.b", LockTimeout: "10us"}, []string{`lockTimeout: "10us" is shorter than PostgreSQL's 1ms resolution`}},
		{"bad mode", PostgresOptions{Table: "a.b", Mode: "upsert"}, []string{`mode: "upsert" is not allowed: use append (the default), replace, merge or replacePartition`}},
		{"merge without key", PostgresOptions{Table: "a.b", Mode: "merge"}, []string{"key: required when mode is merge"}},
		{"key without merge", PostgresOptions{Table: "a.b", Key: []string{"id"}}, []string{"key: only used when mode is merge, not append"}},
		{"key twice", PostgresOptions{Table: "a.b", Mode: "merge", Key: []string{"id", "id"}}, []string{`key: column "id" is listed twice`}},
		{"partition without column", PostgresOptions{Table: "a.b", Mode: "replacePartition"}, []string{"partitionColumn: required when mode is replacePartition"}},
		{"column without partition", PostgresOptions{Table: "a.b", PartitionColumn: "d"}, []string{"partitionColumn: only used when mode is replacePartition"}},
		{"evolution", PostgresOptions{Table: "a.b", SchemaEvolution: "auto"}, []string{`schemaEvolution: "auto" is not allowed: use addColumns`}},
		{"three parts", PostgresOptions{Table: "db.a.b"}, []string{"table:", "has 3 parts"}},
		{"long name", PostgresOptions{Table: "a." + strings.Repeat("x", 64)}, []string{"table:", "longer than 63 bytes"}},
		{"every problem", PostgresOptions{Mode: "merge", SchemaEvolution: "x"}, []string{"table: required", "key: required", "schemaEvolution:"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.opts.Validate()
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error with %q", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestPostgresParseTable(t *testing.T) {
	cases := []struct {
		in, schema, name, err string
	}{
		{in: "analytics.sales", schema: "analytics", name: "sales"},
		{in: "Sales", name: "Sales"},
		{in: " analytics . sales ", schema: "analytics", name: "sales"},
		{in: `"my.schema"."a ""b"""`, schema: "my.schema", name: `a "b"`},
		{in: `analytics."x""; DROP TABLE y; --"`, schema: "analytics", name: `x"; DROP TABLE y; --`},
		{in: `analytics.x"; DROP TABLE y; --`, err: "must be double-quoted"},
		{in: `"unterminated`, err: "unterminated quote"},
		{in: `"a"b`, err: "expected a dot"},
		{in: "a..b", err: "empty name"},
		{in: "a.", err: "empty name"},
		{in: `""`, err: "empty name"},
	}
	for _, c := range cases {
		schema, name, err := pgParseTable(c.in)
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("pgParseTable(%q) error = %v, want %q", c.in, err, c.err)
			}
		case err != nil:
			t.Errorf("pgParseTable(%q) error = %v", c.in, err)
		case schema != c.schema || name != c.name:
			t.Errorf("pgParseTable(%q) = %q, %q; want %q, %q", c.in, schema, name, c.schema, c.name)
		}
	}
}

func TestPostgresDisplayName(t *testing.T) {
	cases := map[string][]string{
		"analytics.sales":             {"analytics", "sales"},
		`analytics."Sales"`:           {"analytics", "Sales"},
		`"my schema"."x""; DROP --"`:  {"my schema", `x"; DROP --`},
		`s."1abc"`:                    {"s", "1abc"},
		`s.a1_b`:                      {"s", "a1_b"},
		`"ünï".t`:                     {"ünï", "t"},
		`pbicopy_test_0a."x.y"`:       {"pbicopy_test_0a", "x.y"},
		`"with""quote"."and space  "`: {`with"quote`, "and space  "},
	}
	for want, parts := range cases {
		if got := pgDisplayName(parts...); got != want {
			t.Errorf("pgDisplayName(%q) = %s, want %s", parts, got, want)
		}
		// The display form parses back to the same parts.
		s, n, err := pgParseTable(want)
		if err != nil || s != parts[0] || n != parts[1] {
			t.Errorf("pgParseTable(%s) = %q, %q, %v; want %q", want, s, n, err, parts)
		}
	}
}

func TestPostgresShouldRetry(t *testing.T) {
	pg := func(code string) error { return fmt.Errorf("exec: %w", &pgconn.PgError{Code: code}) }
	cases := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{pg("08006"), true},  // connection_failure
		{pg("08001"), true},  // sqlclient_unable_to_establish_sqlconnection
		{pg("40001"), true},  // serialization_failure
		{pg("40P01"), true},  // deadlock_detected
		{pg("53300"), true},  // too_many_connections
		{pg("53100"), true},  // disk_full
		{pg("57P01"), true},  // admin_shutdown
		{pg("57P03"), true},  // cannot_connect_now
		{pg("57014"), false}, // query_canceled: someone meant it
		{pg("23505"), false}, // unique_violation
		{pg("23502"), false}, // not_null_violation
		{pg("22003"), false}, // numeric_value_out_of_range
		{pg("42P01"), false}, // undefined_table
		{pg("28P01"), false}, // invalid_password
		{pg("3D000"), false}, // invalid_catalog_name
		{&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, true},
		{fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{context.Canceled, false},
		{fmt.Errorf("lock: %w", context.DeadlineExceeded), false},
		{errors.New("something else"), false},
	}
	for _, c := range cases {
		if got := shouldRetryPG(c.err); got != c.want {
			t.Errorf("shouldRetryPG(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestPostgresBackoffDelay(t *testing.T) {
	b := pgBackoff{attempts: 10, first: 100 * time.Millisecond, max: time.Second}
	for attempt := 1; attempt < 10; attempt++ {
		want := min(b.first<<(attempt-1), b.max)
		for range 50 {
			if d := b.delay(attempt); d < want/2 || d > want {
				t.Fatalf("delay(%d) = %v, want within [%v, %v]", attempt, d, want/2, want)
			}
		}
	}
}

func TestPostgresRedact(t *testing.T) {
	const pw = "s3cr3t-Pw"
	cases := []string{
		"postgres://u:" + pw + "@h/db",
		"postgres://u:" + pw + "@h:notaport/db",
		"postgresql://u:s3cr3t%2DPw@h/db",
		"host=h password=" + pw + " user=u",
		"host=h password='" + pw + "' user=u",
		"host=h password = " + pw,
	}
	for _, dsn := range cases {
		got := pgRedact("failed: "+dsn+" "+pw, dsn)
		if strings.Contains(got, pw) {
			t.Errorf("pgRedact(..., %q) = %q, still holds the password", dsn, got)
		}
	}
}

// TestPostgresErrorsHideThePassword needs no server: nothing listens on the
// port, and the connection is refused (and retried: it is transient).
func TestPostgresErrorsHideThePassword(t *testing.T) {
	const pw = "s3cr3t-Pw"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	schema := arrow.NewSchema([]arrow.Field{sinktest.Field("id", arrow.PrimitiveTypes.Int64)}, nil)
	fast := pgBackoff{attempts: 3, first: time.Millisecond, max: time.Millisecond}
	dsns := []string{
		fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/postgres?sslmode=disable", pw, port),
		fmt.Sprintf("host=127.0.0.1 port=%d user=postgres password=%s sslmode=disable", port, pw),
		"postgres://postgres:" + pw + "@127.0.0.1:notaport/postgres",
		"host=127.0.0.1 password='" + pw + " user=postgres",
	}
	for _, dsn := range dsns {
		_, err := newPostgres(t.Context(), schema, PostgresOptions{DSN: dsn, Table: "public.t"}, fast)
		if err == nil {
			t.Fatalf("newPostgres(%q) succeeded", dsn)
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("the error shows the password: %v", err)
		}
		if !strings.Contains(err.Error(), "public.t") {
			t.Errorf("the error does not name the table: %v", err)
		}
		if strings.Contains(dsn, fmt.Sprint(port)) && !strings.Contains(err.Error(), "after 3 attempts") {
			t.Errorf("a refused connection was not retried: %v", err)
		}
	}
}

func TestPostgresRetryStopsWithContext(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	schema := arrow.NewSchema([]arrow.Field{sinktest.Field("id", arrow.PrimitiveTypes.Int64)}, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	slow := pgBackoff{attempts: 100, first: time.Hour, max: time.Hour}
	start := time.Now()
	_, err = newPostgres(ctx, schema, PostgresOptions{DSN: fmt.Sprintf("host=127.0.0.1 port=%d sslmode=disable", port), Table: "t"}, slow)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want one wrapping context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the back-off ignored the context: returned after %v", d)
	}
}

func TestPostgresFieldsRefuseOtherTypes(t *testing.T) {
	for _, typ := range []arrow.DataType{
		arrow.PrimitiveTypes.Int32,
		&arrow.TimestampType{Unit: arrow.Millisecond},
		&arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"},
		arrow.BinaryTypes.LargeString,
	} {
		_, err := pgFields(arrow.NewSchema([]arrow.Field{{Name: "c", Type: typ}}, nil))
		if err == nil || !strings.Contains(err.Error(), `column "c"`) {
			t.Errorf("pgFields(%s) error = %v, want one naming the column", typ, err)
		}
	}
	if _, err := pgFields(arrow.NewSchema([]arrow.Field{{Name: "c", Type: arrow.BinaryTypes.String}, {Name: "c", Type: arrow.BinaryTypes.String}}, nil)); err == nil {
		t.Error("pgFields accepted a column name twice")
	}
}

func TestPostgresNumericTypmod(t *testing.T) {
	typmod := func(p, s int32) int32 { return p<<16 | s&0x7ff + 4 }
	f := pgField{kind: pgNumeric, precision: 19, scale: 4}
	cases := []struct {
		typmod int32
		want   bool
	}{
		{-1, true},
		{typmod(19, 4), true},
		{typmod(38, 10), true},
		{typmod(21, 6), true},
		{typmod(20, 6), false}, // 14 integer digits < 15
		{typmod(18, 4), false}, // fewer integer digits
		{typmod(19, 2), false}, // rounds the fraction
		{typmod(19, 5), false}, // 14 integer digits < 15
		{typmod(10, -2), false},
	}
	for _, c := range cases {
		if got := f.accepts(pgtype.NumericOID, c.typmod); got != c.want {
			t.Errorf("numeric(19,4) accepts typmod %d = %v, want %v", c.typmod, got, c.want)
		}
	}
}

// TestPostgresNumericEncoding decodes what pgAppendNumeric writes with pgx's
// own numeric codec and compares the values exactly.
func TestPostgresNumericEncoding(t *testing.T) {
	m := pgtype.NewMap()
	maxAbs := new(big.Int).Sub(new(big.Int).Exp(big.NewInt(10), big.NewInt(38), nil), big.NewInt(1))
	check := func(num decimal128.Num, scale int32) {
		t.Helper()
		u := num.BigInt()
		buf := pgAppendNumeric(nil, num, scale)
		if got := int16(uint16(buf[6])<<8 | uint16(buf[7])); got != int16(scale) {
			t.Fatalf("%s scale %d: dscale %d", u, scale, got)
		}
		var n pgtype.Numeric
		if err := m.Scan(pgtype.NumericOID, pgtype.BinaryFormatCode, buf, &n); err != nil {
			t.Fatalf("%s scale %d: decode: %v", u, scale, err)
		}
		got := new(big.Rat).SetInt(n.Int)
		e := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(abs32(n.Exp))), nil)
		if n.Exp >= 0 {
			got.Mul(got, new(big.Rat).SetInt(e))
		} else {
			got.Quo(got, new(big.Rat).SetInt(e))
		}
		want := new(big.Rat).SetFrac(u, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil))
		if got.Cmp(want) != 0 {
			t.Fatalf("%s scale %d: decoded %s, want %s", u, scale, got.FloatString(int(scale)), want.FloatString(int(scale)))
		}
	}
	edges := []decimal128.Num{decimal128.FromI64(0), decimal128.FromI64(1), decimal128.FromI64(-1),
		decimal128.FromI64(9999), decimal128.FromI64(10000), decimal128.FromI64(-10001),
		decimal128.FromBigInt(maxAbs), decimal128.FromBigInt(new(big.Int).Neg(maxAbs)),
		decimal128.New(1<<63-1, 1<<64-1), // 2^127-1, beyond 38 digits
		decimal128.New(-1<<63, 0),        // -2^127
	}
	for scale := int32(0); scale <= 38; scale++ {
		for _, u := range edges {
			check(u, scale)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		u := new(big.Int).SetUint64(r.Uint64() >> 1) // |n| < 2^127
		u.Lsh(u, 64).Or(u, new(big.Int).SetUint64(r.Uint64()))
		u.Rsh(u, uint(r.IntN(127)))
		if r.IntN(2) == 0 {
			u.Neg(u)
		}
		check(decimal128.FromBigInt(u), int32(r.IntN(39)))
	}
}

func abs32(x int32) int32 {
	if x < 0 {
		return -x
	}
	return x
}

func TestPostgresFindNul(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	schema := arrow.NewSchema([]arrow.Field{sinktest.Field("s", arrow.BinaryTypes.String)}, nil)
	rec := sinktest.MustBatch(t, mem, schema, [][]any{{"a"}, {nil}, {""}, {"b\x00c"}, {"\x00"}})
	defer rec.Release()
	if r, ok := pgFindNul(rec.Column(0).(*array.String)); !ok || r != 3 {
		t.Errorf("pgFindNul = %d, %v; want 3, true", r, ok)
	}
	sliced := rec.NewSlice(0, 3)
	defer sliced.Release()
	if r, ok := pgFindNul(sliced.Column(0).(*array.String)); ok {
		t.Errorf("pgFindNul found a NUL at %d in rows without one", r)
	}
}

func TestPostgresLockTimeoutDefault(t *testing.T) {
	if d := (PostgresOptions{}).lockTimeout(); d != 10*time.Minute {
		t.Errorf("default lockTimeout = %s, want 10m", d)
	}
	if d := (PostgresOptions{LockTimeout: "90s"}).lockTimeout(); d != 90*time.Second {
		t.Errorf("lockTimeout 90s = %s", d)
	}
}
