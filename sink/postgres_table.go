package sink

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// pgTable is the target of a load, with its schema resolved.
type pgTable struct {
	schema, name string
	display      string // for messages
}

func (t pgTable) ident() string { return pgx.Identifier{t.schema, t.name}.Sanitize() }

// pgColumn is a column of an existing table, as the catalog describes it.
type pgColumn struct {
	name       string
	typeOID    uint32
	typmod     int32
	typeName   string // format_type: "numeric(19,4)", "character varying(20)"
	notNull    bool
	hasDefault bool
	identity   string // "" or a/d (GENERATED ALWAYS / BY DEFAULT AS IDENTITY)
	generated  string // "" or s (GENERATED ALWAYS AS (...) STORED)
}

// pgTableState is what inspect found of the target table.
type pgTableState struct {
	schemaExists bool
	exists       bool
	relOID       uint32
	missing      []pgField // mapped columns the table lacks (addColumns only)
}

// inspect checks, without changing anything, that the table can take the
// load: its schema exists, it exists or may be created, its columns fit
// the mapping (those it lacks may be added), and for merge it has a unique
// index on the key. Every problem is reported at once, before any row is
// sent.
func (t pgTable) inspect(ctx context.Context, tx pgx.Tx, fields []pgField, opts PostgresOptions) (pgTableState, error) {
	var st pgTableState
	var nsOID uint32
	err := tx.QueryRow(ctx, "select oid from pg_namespace where nspname = $1", t.schema).Scan(&nsOID)
	switch {
	case errors.Is(err, pgx.ErrNoRows) && !opts.CreateSchema:
		return st, fmt.Errorf("check table %s: schema %s does not exist: create it first, or set createSchema: true", t.display, pgDisplayName(t.schema))
	case errors.Is(err, pgx.ErrNoRows) && !opts.createTable():
		return st, fmt.Errorf("check table %s: schema %s does not exist and createTable is false", t.display, pgDisplayName(t.schema))
	case errors.Is(err, pgx.ErrNoRows):
		return st, nil // created at the commit
	case err != nil:
		return st, fmt.Errorf("check table %s: %w", t.display, err)
	}
	st.schemaExists = true
	var relkind string
	err = tx.QueryRow(ctx, "select oid, relkind::text from pg_class where relnamespace = $1 and relname = $2", nsOID, t.name).Scan(&st.relOID, &relkind)
	if errors.Is(err, pgx.ErrNoRows) {
		if !opts.createTable() {
			return st, fmt.Errorf("check table %s: the table does not exist and createTable is false", t.display)
		}
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("check table %s: %w", t.display, err)
	}
	st.exists = true
	if relkind != "r" && relkind != "p" {
		return st, fmt.Errorf("check table %s: it is a %s, not a table", t.display, pgRelkindName(relkind))
	}

	cols, err := t.columns(ctx, tx, st.relOID)
	if err != nil {
		return st, err
	}
	missing, problems := pgCompare(fields, cols, opts.SchemaEvolution == pgAddColumns)
	if len(problems) > 0 {
		return st, fmt.Errorf("check table %s: the table does not match the mapping: %s", t.display, strings.Join(problems, "; "))
	}
	st.missing = missing
	if opts.mode() == pgMerge {
		if err := t.checkUniqueKey(ctx, tx, st.relOID, opts.Key); err != nil {
			return st, err
		}
	}
	return st, nil
}

// prepare makes the table ready for the load: it creates a missing table,
// or checks an existing one and adds missing columns when allowed. It
// reports whether the table existed. The caller holds the table's
// exclusive lock when prepare may change the table.
func (t pgTable) prepare(ctx context.Context, tx pgx.Tx, fields []pgField, opts PostgresOptions) (bool, error) {
	st, err := t.inspect(ctx, tx, fields, opts)
	if err != nil {
		return st.exists, err
	}
	if !st.exists {
		var key []string
		if opts.mode() == pgMerge {
			key = opts.Key
		}
		if _, err := tx.Exec(ctx, pgCreateTableSQL(t.ident(), fields, key)); err != nil {
			return false, fmt.Errorf("create table %s: %w", t.display, err)
		}
		return false, nil
	}
	if len(st.missing) > 0 {
		var b strings.Builder
		b.WriteString("alter table " + t.ident())
		for i, f := range st.missing {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(" add column " + pgx.Identifier{f.name}.Sanitize() + " " + f.sqlType())
		}
		if _, err := tx.Exec(ctx, b.String()); err != nil {
			return true, fmt.Errorf("add columns to %s: %w", t.display, err)
		}
	}
	return true, nil
}

func (t pgTable) columns(ctx context.Context, tx pgx.Tx, relOID uint32) ([]pgColumn, error) {
	rows, err := tx.Query(ctx, `select attname::text, atttypid, atttypmod, format_type(atttypid, atttypmod),
		attnotnull, atthasdef, attidentity::text, attgenerated::text
		from pg_attribute where attrelid = $1 and attnum > 0 and not attisdropped order by attnum`, relOID)
	if err != nil {
		return nil, fmt.Errorf("check table %s: %w", t.display, err)
	}
	var cols []pgColumn
	var c pgColumn
	_, err = pgx.ForEachRow(rows, []any{&c.name, &c.typeOID, &c.typmod, &c.typeName, &c.notNull, &c.hasDefault, &c.identity, &c.generated}, func() error {
		cols = append(cols, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("check table %s: %w", t.display, err)
	}
	return cols, nil
}

// pgCompare matches the mapped fields with the table's columns. It returns
// the fields to add (when adding is allowed) and the problems, each naming
// the column, the expected and the found type.
func pgCompare(fields []pgField, cols []pgColumn, addColumns bool) (missing []pgField, problems []string) {
	byName := make(map[string]pgColumn, len(cols))
	for _, c := range cols {
		byName[c.name] = c
	}
	mapped := make(map[string]bool, len(fields))
	for _, f := range fields {
		mapped[f.name] = true
		c, ok := byName[f.name]
		switch {
		case !ok && addColumns:
			missing = append(missing, f)
		case !ok:
			problems = append(problems, fmt.Sprintf("column %q is missing (expected %s; set schemaEvolution: addColumns to add it)", f.name, f.sqlType()))
		case c.generated != "":
			problems = append(problems, fmt.Sprintf("column %q is a generated column and cannot be loaded", f.name))
		case !f.accepts(c.typeOID, c.typmod):
			problems = append(problems, fmt.Sprintf("column %q: expected %s, found %s", f.name, f.expected(), c.typeName))
		}
	}
	for _, c := range cols {
		if !mapped[c.name] && c.notNull && !c.hasDefault && c.identity == "" && c.generated == "" {
			problems = append(problems, fmt.Sprintf("column %q is NOT NULL without a default and is not mapped, so no row could be loaded", c.name))
		}
	}
	return missing, problems
}

// accepts reports whether a column of the given type stores every value of
// f unchanged and takes f's binary COPY format.
func (f pgField) accepts(oid uint32, typmod int32) bool {
	switch f.kind {
	case pgText:
		return oid == pgtype.TextOID || oid == pgtype.VarcharOID
	case pgBigint:
		return oid == pgtype.Int8OID
	case pgDouble:
		return oid == pgtype.Float8OID
	case pgBoolean:
		return oid == pgtype.BoolOID
	case pgDate:
		return oid == pgtype.DateOID
	case pgTimestamp:
		return oid == pgtype.TimestampOID
	case pgNumeric:
		if oid != pgtype.NumericOID {
			return false
		}
		if typmod < 0 {
			return true // numeric without precision holds anything
		}
		precision := (typmod - 4) >> 16 & 0xffff
		scale := ((typmod-4)&0x7ff ^ 1024) - 1024 // sign-extended since PostgreSQL 15
		return scale >= f.scale && precision-scale >= f.precision-f.scale
	}
	return false
}

// expected describes the types accepts takes, for messages.
func (f pgField) expected() string {
	switch f.kind {
	case pgText:
		return "text (or varchar)"
	case pgNumeric:
		return f.sqlType() + " (or a numeric with at least as many digits before and after the point)"
	}
	return f.sqlType()
}

func pgRelkindName(k string) string {
	switch k {
	case "v":
		return "view"
	case "m":
		return "materialized view"
	case "f":
		return "foreign table"
	case "S":
		return "sequence"
	case "i", "I":
		return "index"
	case "c":
		return "composite type"
	}
	return "relation of kind " + k
}

// checkUniqueKey makes sure ON CONFLICT (key) has a unique index to use.
func (t pgTable) checkUniqueKey(ctx context.Context, tx pgx.Tx, relOID uint32, key []string) error {
	sorted := slices.Sorted(slices.Values(key))
	var ok bool
	err := tx.QueryRow(ctx, `select exists (
		select 1 from pg_index i
		where i.indrelid = $1 and i.indisunique and i.indimmediate and i.indisvalid
			and i.indpred is null and i.indexprs is null and i.indnkeyatts = $2
			and (select array_agg(a.attname::text order by a.attname::text collate "C")
				from unnest(i.indkey::int2[]) with ordinality k(attnum, n)
				join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
				where k.n <= i.indnkeyatts) = $3::text[])`,
		relOID, len(key), sorted).Scan(&ok)
	if err != nil {
		return fmt.Errorf("check the key of %s: %w", t.display, err)
	}
	if !ok {
		return fmt.Errorf("check the key of %s: merge needs a unique index on exactly (%s) and the table has none; create one with: CREATE UNIQUE INDEX ON %s (%s)",
			t.display, strings.Join(key, ", "), t.ident(), pgQuoteList(key))
	}
	return nil
}

// merge upserts the staged rows into the table and returns the number of
// rows inserted or updated.
func (t pgTable) merge(ctx context.Context, tx pgx.Tx, fields []pgField, key []string) (int64, error) {
	stage := pgStageIdent
	if _, err := tx.Exec(ctx, "analyze "+stage); err != nil {
		return 0, fmt.Errorf("merge into %s: %w", t.display, err)
	}
	keys := pgQuoteList(key)
	nullCond := make([]string, len(key))
	for i, k := range key {
		nullCond[i] = pgx.Identifier{k}.Sanitize() + " is null"
	}
	var nulls int64
	if err := tx.QueryRow(ctx, "select count(*) from "+stage+" where "+strings.Join(nullCond, " or ")).Scan(&nulls); err != nil {
		return 0, fmt.Errorf("merge into %s: %w", t.display, err)
	}
	if nulls > 0 {
		return 0, fmt.Errorf("merge into %s: %d loaded rows have a null in the key (%s)", t.display, nulls, strings.Join(key, ", "))
	}
	var dupKey string
	var dupCount int64
	err := tx.QueryRow(ctx, "select row("+keys+")::text, count(*) from "+stage+" group by "+keys+" having count(*) > 1 limit 1").Scan(&dupKey, &dupCount)
	switch {
	case err == nil:
		return 0, fmt.Errorf("merge into %s: the key (%s) is not unique in the load: %s appears %d times", t.display, strings.Join(key, ", "), dupKey, dupCount)
	case !errors.Is(err, pgx.ErrNoRows):
		return 0, fmt.Errorf("merge into %s: %w", t.display, err)
	}

	cols := make([]string, len(fields))
	var set []string
	for i, f := range fields {
		cols[i] = f.name
		if !slices.Contains(key, f.name) {
			q := pgx.Identifier{f.name}.Sanitize()
			set = append(set, q+" = excluded."+q)
		}
	}
	colList := pgQuoteList(cols)
	sql := "insert into " + t.ident() + " (" + colList + ") select " + colList + " from " + stage + " on conflict (" + keys + ") do "
	if len(set) == 0 {
		sql += "nothing"
	} else {
		sql += "update set " + strings.Join(set, ", ")
	}
	tag, err := tx.Exec(ctx, sql)
	if err != nil {
		return 0, fmt.Errorf("merge into %s: %w", t.display, err)
	}
	return tag.RowsAffected(), nil
}

// pgStageIdent is the quoted name of the staging table.
var pgStageIdent = pgx.Identifier{"pg_temp", pgStage}.Sanitize()

// strays reports whether a staged row's partition value is null or lies
// outside rng: such a load deletes by value beyond its own range, so it
// needs the whole table to itself.
func (t pgTable) strays(ctx context.Context, tx pgx.Tx, column string, rng *PartitionRange) (bool, error) {
	if _, err := tx.Exec(ctx, "analyze "+pgStageIdent); err != nil {
		return false, fmt.Errorf("replace partitions of %s: %w", t.display, err)
	}
	if rng == nil {
		return true, nil
	}
	p := pgx.Identifier{column}.Sanitize()
	var out bool
	err := tx.QueryRow(ctx, "select exists (select 1 from "+pgStageIdent+" where "+p+" is null or not ("+p+" >= $1 and "+p+" < $2))", rng.From, rng.To).Scan(&out)
	if err != nil {
		return false, fmt.Errorf("replace partitions of %s: %w", t.display, err)
	}
	return out, nil
}

// replacePartition deletes the table's rows whose partition value lies in
// rng and, unless inRange says every staged value lies in rng, also those
// whose value occurs in the staged rows (null included); it then inserts
// the staged rows and returns their number.
func (t pgTable) replacePartition(ctx context.Context, tx pgx.Tx, fields []pgField, column string, rng *PartitionRange, inRange bool) (int64, error) {
	p := pgx.Identifier{column}.Sanitize()
	var conds []string
	var args []any
	if !inRange {
		conds = append(conds, p+" in (select "+p+" from "+pgStageIdent+")",
			"("+p+" is null and exists (select 1 from "+pgStageIdent+" where "+p+" is null))")
	}
	if rng != nil {
		conds = append(conds, "("+p+" >= $1 and "+p+" < $2)")
		args = []any{rng.From, rng.To}
	}
	if _, err := tx.Exec(ctx, "delete from "+t.ident()+" where "+strings.Join(conds, " or "), args...); err != nil {
		return 0, fmt.Errorf("replace partitions of %s: delete: %w", t.display, err)
	}
	n, err := t.insertFrom(ctx, tx, fields, pgStageIdent)
	if err != nil {
		return 0, fmt.Errorf("replace partitions of %s: %w", t.display, err)
	}
	return n, nil
}

// insertFrom inserts every row of the table from (quoted) into t.
func (t pgTable) insertFrom(ctx context.Context, tx pgx.Tx, fields []pgField, from string) (int64, error) {
	cols := make([]string, len(fields))
	for i, f := range fields {
		cols[i] = f.name
	}
	colList := pgQuoteList(cols)
	tag, err := tx.Exec(ctx, "insert into "+t.ident()+" ("+colList+") select "+colList+" from "+from)
	if err != nil {
		return 0, fmt.Errorf("insert: %w", err)
	}
	return tag.RowsAffected(), nil
}

func pgCreateTableSQL(ident string, fields []pgField, key []string) string {
	var b strings.Builder
	b.WriteString("create table " + ident + " (")
	pgColumnDefs(&b, fields)
	if len(key) > 0 {
		b.WriteString(", primary key (" + pgQuoteList(key) + ")")
	}
	b.WriteByte(')')
	return b.String()
}

func pgCreateStageSQL(fields []pgField) string {
	var b strings.Builder
	b.WriteString("create temporary table " + pgx.Identifier{pgStage}.Sanitize() + " (")
	pgColumnDefs(&b, fields)
	b.WriteString(") on commit drop")
	return b.String()
}

func pgColumnDefs(b *strings.Builder, fields []pgField) {
	for i, f := range fields {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(pgx.Identifier{f.name}.Sanitize() + " " + f.sqlType())
	}
}

// pgQuoteList quotes names for SQL and joins them with commas.
func pgQuoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = pgx.Identifier{n}.Sanitize()
	}
	return strings.Join(q, ", ")
}
