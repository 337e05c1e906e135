package sink

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/jackc/pgx/v5"

	"github.com/pbicopy/pbicopy/internal/sinktest"
)

// pgtQuoted is the only shape a quoted name may take in SQL: one or two
// double-quoted parts, inner quotes doubled, joined by a dot. Nothing in
// it can end the identifier early.
var pgtQuoted = regexp.MustCompile(`^"([^"\x00]|"")*"(\."([^"\x00]|"")*")?$`)

// pgtQuoteIdent is PostgreSQL's quoting of a name (quote_ident, always
// quoting): the reference pgx's sanitiser must match.
func pgtQuoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// FuzzPostgresIdentifier: any table option either fails to parse or
// yields parts PostgreSQL takes unchanged (not empty, at most 63 bytes, no
// NUL), whose quoted form is quote_ident's, has the one shape above, and
// parses back to the same parts; the display form parses back too. A
// column name is quoted the same way.
func FuzzPostgresIdentifier(f *testing.F) {
	for _, s := range []string{"analytics.sales", "sales", `"my.schema"."a ""b"""`, `"x""; DROP TABLE y; --"`,
		`a."b.c"`, " a . b ", `"a"b`, `a"b`, "a..b", "a.b.c", `""`, `"`, "é.ü", "x\x00y", strings.Repeat("x", 64)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		schema, name, err := pgParseTable(s)
		if err == nil {
			parts := []string{name}
			if schema != "" {
				parts = []string{schema, name}
			}
			for _, p := range parts {
				if err := pgCheckIdentifier(p); err != nil {
					t.Fatalf("%q parsed to a part PostgreSQL would alter: %v", s, err)
				}
			}
			quoted := pgx.Identifier(parts).Sanitize()
			ref := make([]string, len(parts))
			for i, p := range parts {
				ref[i] = pgtQuoteIdent(p)
			}
			if want := strings.Join(ref, "."); quoted != want {
				t.Fatalf("%q: sanitised to %s, quote_ident gives %s", s, quoted, want)
			}
			if !pgtQuoted.MatchString(quoted) {
				t.Fatalf("%q: quoted form %s could end the identifier early", s, quoted)
			}
			back, err := pgSplitName(quoted)
			if err != nil || !slices.Equal(back, parts) {
				t.Fatalf("%q: quoted %s parses back to %q (%v), want %q", s, quoted, back, err, parts)
			}
			display := pgDisplayName(parts...)
			back, err = pgSplitName(display)
			if err != nil || !slices.Equal(back, parts) {
				t.Fatalf("%q: display %s parses back to %q (%v), want %q", s, display, back, err, parts)
			}
		}
		if pgCheckIdentifier(s) == nil {
			q := pgx.Identifier{s}.Sanitize()
			if q != pgtQuoteIdent(s) || !pgtQuoted.MatchString(q) {
				t.Fatalf("column %q quoted as %s", s, q)
			}
			if back, err := pgSplitName(q); err != nil || !slices.Equal(back, []string{s}) {
				t.Fatalf("column %q: quoted %s parses back to %q (%v)", s, q, back, err)
			}
		}
	})
}

// TestPostgresIdentifierServerIntegration: PostgreSQL's own parser
// (parse_ident) reads every quoted name the sink writes as the parts
// pbicopy parsed, and a table of such a name loads and reads back.
func TestPostgresIdentifierServerIntegration(t *testing.T) {
	db := pgtOpen(t)
	ctx := context.Background()
	for _, s := range []string{"analytics.sales", `"my.schema"."a ""b"""`, `"x""; DROP TABLE y; --"`, `a."b.c"`, " a . b ",
		"é.ü", `"Mixed Case".T`, `"a\b"."$1"`, `"'; select 1; --".x`, strings.Repeat("x", 63)} {
		schema, name, err := pgParseTable(s)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		parts := []string{name}
		if schema != "" {
			parts = []string{schema, name}
		}
		var got []string
		if err := db.Conn.QueryRow(ctx, "select parse_ident($1)", pgx.Identifier(parts).Sanitize()).Scan(&got); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if !slices.Equal(got, parts) {
			t.Errorf("%q: the server reads %q, pbicopy %q", s, got, parts)
		}
	}
	mem := pgtAlloc(t)
	schema := arrow.NewSchema([]arrow.Field{sinktest.Field(`c"; drop table x; --`, arrow.PrimitiveTypes.Int64)}, nil)
	table := `x""; DROP TABLE y; --`
	pgtMustLoad(t, mem, PostgresOptions{DSN: db.DSN(), Table: pgtQuoteIdent(db.Schema) + `."` + table + `"`}, schema, [][]any{{1}})
	if n := db.Count(`x"; DROP TABLE y; --`); n != 1 {
		t.Errorf("%d rows, want 1", n)
	}
}
