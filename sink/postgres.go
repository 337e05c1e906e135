package sink

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/jackc/pgx/v5"

	"github.com/pbicopy/pbicopy/internal/spec"
	"github.com/pbicopy/pbicopy/mapping"
)

// The load modes of a PostgreSQL sink.
const (
	pgAppend           = "append"
	pgReplace          = "replace"
	pgMerge            = "merge"
	pgReplacePartition = "replacePartition"
)

// pgAddColumns is the one value schemaEvolution accepts besides "".
const pgAddColumns = "addColumns"

// pgMaxIdentifier is PostgreSQL's identifier limit in bytes (NAMEDATALEN-1).
// Longer names are silently truncated by the server, so they are refused.
const pgMaxIdentifier = 63

// PostgresOptions configures a PostgreSQL sink: the postgres block of a job's
// sinks. Every field but Table may be left out.
//
// Table names are taken literally, without case folding: double-quote a part
// that holds a dot or a quote, doubling inner quotes ("my.schema"."a ""b"""). An
// unqualified name resolves to the connection's current_schema(). PreSQL and
// PostSQL run in the load's transaction, before the table is checked and
// after the rows are in; they must not end the transaction.
type PostgresOptions struct {
	DSN             string   `yaml:"dsn" defaultDoc:"the PG* environment variables" doc:"libpq keyword/value string or postgres:// URL; what it leaves out comes from the PG* environment variables, as with psql. Write a password as ${ENV_VAR}."`
	Table           string   `yaml:"table" required:"the target table, e.g. analytics.sales" doc:"Target table, schema-qualified (analytics.sales); names are taken literally, double-quote a part holding a dot or a quote. Unqualified, the connection's current_schema()."`
	Mode            string   `yaml:"mode" enum:"append,replace,merge,replacePartition" default:"append" doc:"append; replace (delete every row, then load); merge (upsert on key); replacePartition (delete the rows whose partitionColumn value is in the load, then insert). All in one transaction."`
	Key             []string `yaml:"key" doc:"Columns that identify a row: required by mode merge and only used by it."`
	PartitionColumn string   `yaml:"partitionColumn" doc:"Column whose loaded values select the rows to delete: required by mode replacePartition and only used by it."`
	PreSQL          string   `yaml:"preSQL" doc:"SQL run in the load's transaction before the table is checked; it must not end the transaction."`
	PostSQL         string   `yaml:"postSQL" doc:"SQL run in the load's transaction after the rows are in; it must not end the transaction."`
	CreateTable     *bool    `yaml:"createTable" default:"true" doc:"Create the table when it is missing."`
	CreateSchema    bool     `yaml:"createSchema" default:"false" doc:"Create the table's schema when it is missing (CREATE SCHEMA IF NOT EXISTS, in the load's transaction); otherwise a missing schema is an error."`
	SchemaEvolution string   `yaml:"schemaEvolution" enum:"addColumns" defaultDoc:"none: a mapped column missing from the table is an error" doc:"addColumns: add a mapped column the table lacks, in the load's transaction."`
	StripNul        bool     `yaml:"stripNul" default:"false" doc:"Remove NUL characters from strings instead of failing the run: PostgreSQL text cannot hold them."`
	LockTimeout     string   `yaml:"lockTimeout" default:"10m" pattern:"^(([0-9]+[.]?[0-9]*|[.][0-9]+)(ns|us|µs|ms|s|m|h))+$" patternDoc:"a duration such as 30s, 10m or 1h" doc:"The longest the load waits for a lock (another load's commit on the table, DDL); then it fails, naming the table and the session holding the lock."`

	// Partition, set by the runner for one partition of a backfill, makes
	// replacePartition also delete every row whose partition column lies in
	// [Partition.From, Partition.To), so a partition that lost rows at the
	// source loses them here too. It is not part of the job file.
	Partition *PartitionRange `yaml:"-"`
}

// PartitionRange is the half-open range of partition-column values one
// partition covers: dates (time.Time) or integers (int64).
type PartitionRange struct {
	From, To any
}

// Validate checks the option values on their own, without a schema or a
// server, and reports every problem found, each naming its field.
func (o PostgresOptions) Validate() error {
	errs := []error{spec.Check(o)}
	if strings.TrimSpace(o.Table) != "" {
		if _, _, err := pgParseTable(o.Table); err != nil {
			errs = append(errs, fmt.Errorf("table: %w", err))
		}
	}
	if o.LockTimeout != "" {
		if d, err := time.ParseDuration(o.LockTimeout); err == nil && d < time.Millisecond {
			errs = append(errs, fmt.Errorf("lockTimeout: %q is shorter than PostgreSQL's 1ms resolution: use a positive duration such as 10m", o.LockTimeout))
		}
	}
	mode := o.mode()
	switch {
	case mode == pgMerge && len(o.Key) == 0:
		errs = append(errs, errors.New("key: required when mode is merge (the columns that identify a row)"))
	case mode != pgMerge && len(o.Key) > 0:
		errs = append(errs, fmt.Errorf("key: only used when mode is merge, not %s", mode))
	}
	seen := make(map[string]bool, len(o.Key))
	for _, k := range o.Key {
		if err := pgCheckIdentifier(k); err != nil {
			errs = append(errs, fmt.Errorf("key: %w", err))
		} else if seen[k] {
			errs = append(errs, fmt.Errorf("key: column %q is listed twice", k))
		}
		seen[k] = true
	}
	switch {
	case mode == pgReplacePartition && o.PartitionColumn == "":
		errs = append(errs, errors.New("partitionColumn: required when mode is replacePartition"))
	case mode != pgReplacePartition && o.PartitionColumn != "":
		errs = append(errs, fmt.Errorf("partitionColumn: only used when mode is replacePartition, not %s", mode))
	case o.PartitionColumn != "":
		if err := pgCheckIdentifier(o.PartitionColumn); err != nil {
			errs = append(errs, fmt.Errorf("partitionColumn: %w", err))
		}
	}
	return errors.Join(errs...)
}

func (o PostgresOptions) mode() string {
	if o.Mode == "" {
		return pgAppend
	}
	return o.Mode
}

// lockTimeout is the LockTimeout option, or its default.
func (o PostgresOptions) lockTimeout() time.Duration {
	d, err := time.ParseDuration(cmp.Or(o.LockTimeout, spec.Default[PostgresOptions]("lockTimeout")))
	if err != nil {
		panic("sink: lockTimeout was not validated: " + err.Error())
	}
	return d
}

func (o PostgresOptions) createTable() bool {
	return o.CreateTable == nil || *o.CreateTable
}

// pgCheckIdentifier refuses names PostgreSQL would alter or reject.
func pgCheckIdentifier(name string) error {
	switch {
	case name == "":
		return errors.New("empty name")
	case len(name) > pgMaxIdentifier:
		return fmt.Errorf("name %q is longer than %d bytes, PostgreSQL's limit", name, pgMaxIdentifier)
	case strings.IndexByte(name, 0) >= 0:
		return fmt.Errorf("name %q contains a NUL character", name)
	}
	return nil
}

// pgParseTable splits a table option into schema (empty when unqualified)
// and table name.
func pgParseTable(s string) (schema, name string, err error) {
	parts, err := pgSplitName(s)
	if err != nil {
		return "", "", err
	}
	for _, p := range parts {
		if err := pgCheckIdentifier(p); err != nil {
			return "", "", err
		}
	}
	switch len(parts) {
	case 1:
		return "", parts[0], nil
	case 2:
		return parts[0], parts[1], nil
	}
	return "", "", fmt.Errorf("%q has %d parts: write schema.table", s, len(parts))
}

// pgSplitName splits a dotted name into its parts, undoing SQL-style double
// quoting. A bare part is taken literally (trimmed of spaces) and may not
// hold a quote.
func pgSplitName(s string) ([]string, error) {
	var parts []string
	i := 0
	for {
		for i < len(s) && s[i] == ' ' {
			i++
		}
		var part string
		if i < len(s) && s[i] == '"' {
			var b strings.Builder
			i++
			for {
				if i >= len(s) {
					return nil, fmt.Errorf("%q has an unterminated quote", s)
				}
				if s[i] == '"' {
					if i+1 < len(s) && s[i+1] == '"' {
						b.WriteByte('"')
						i += 2
						continue
					}
					i++
					break
				}
				b.WriteByte(s[i])
				i++
			}
			part = b.String()
			for i < len(s) && s[i] == ' ' {
				i++
			}
		} else {
			end := len(s)
			if j := strings.IndexByte(s[i:], '.'); j >= 0 {
				end = i + j
			}
			part = strings.TrimSpace(s[i:end])
			if strings.IndexByte(part, '"') >= 0 {
				return nil, fmt.Errorf("%q: a name holding a quote must be double-quoted, with inner quotes doubled", s)
			}
			i = end
		}
		if part == "" {
			return nil, fmt.Errorf("%q has an empty name", s)
		}
		parts = append(parts, part)
		if i == len(s) {
			return parts, nil
		}
		if s[i] != '.' {
			return nil, fmt.Errorf("%q: expected a dot after the quoted name %q", s, part)
		}
		i++
	}
}

// pgDisplayName writes a qualified name for people: parts that need no
// quoting are left bare, the others are quoted as SQL would.
func pgDisplayName(parts ...string) string {
	out := make([]string, len(parts))
	for i, p := range parts {
		if pgIsPlainName(p) {
			out[i] = p
		} else {
			out[i] = pgx.Identifier{p}.Sanitize()
		}
	}
	return strings.Join(out, ".")
}

func pgIsPlainName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return s != ""
}

// pgField is one mapped column: an Arrow field and the PostgreSQL type
// pbicopy creates for it.
type pgField struct {
	name      string
	kind      pgKind
	precision int32 // numeric only
	scale     int32 // numeric only
}

type pgKind uint8

const (
	pgText pgKind = iota + 1
	pgBigint
	pgDouble
	pgNumeric
	pgBoolean
	pgDate
	pgTimestamp
)

// sqlType is the column type pbicopy creates for f.
func (f pgField) sqlType() string {
	switch f.kind {
	case pgText:
		return "text"
	case pgBigint:
		return "bigint"
	case pgDouble:
		return "double precision"
	case pgNumeric:
		return fmt.Sprintf("numeric(%d,%d)", f.precision, f.scale)
	case pgBoolean:
		return "boolean"
	case pgDate:
		return "date"
	case pgTimestamp:
		return "timestamp without time zone"
	}
	panic("sink: sqlType of invalid pgField")
}

// pgFields maps an Arrow schema to PostgreSQL columns.
func pgFields(schema *arrow.Schema) ([]pgField, error) {
	if schema == nil || schema.NumFields() == 0 {
		return nil, errors.New("the schema has no columns")
	}
	fields := make([]pgField, schema.NumFields())
	seen := make(map[string]bool, schema.NumFields())
	for i, f := range schema.Fields() {
		if err := pgCheckIdentifier(f.Name); err != nil {
			return nil, fmt.Errorf("column %d: %w", i+1, err)
		}
		if seen[f.Name] {
			return nil, fmt.Errorf("column %q appears twice", f.Name)
		}
		seen[f.Name] = true
		pf := pgField{name: f.Name}
		switch t := f.Type.(type) {
		case *arrow.StringType, *arrow.DictionaryType:
			if !mapping.IsStringArrow(t) {
				return nil, fmt.Errorf("column %q: Arrow type %s is not supported: a dictionary must be of utf8 with signed integer indices", f.Name, t)
			}
			pf.kind = pgText
		case *arrow.Int64Type:
			pf.kind = pgBigint
		case *arrow.Float64Type:
			pf.kind = pgDouble
		case *arrow.BooleanType:
			pf.kind = pgBoolean
		case *arrow.Date32Type:
			pf.kind = pgDate
		case *arrow.TimestampType:
			if t.Unit != arrow.Microsecond || t.TimeZone != "" {
				return nil, fmt.Errorf("column %q: Arrow type %s is not supported: use timestamp[us] without a time zone", f.Name, t)
			}
			pf.kind = pgTimestamp
		case *arrow.Decimal128Type:
			pf.kind, pf.precision, pf.scale = pgNumeric, t.Precision, t.Scale
		default:
			return nil, fmt.Errorf("column %q: Arrow type %s is not supported", f.Name, f.Type)
		}
		fields[i] = pf
	}
	return fields, nil
}

// database names the server and database the DSN reaches, without the
// user or password: host:port/database, or "" if the DSN does not parse.
func (o PostgresOptions) database() string {
	cfg, err := pgx.ParseConfig(o.DSN)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%s:%d/%s", cfg.Host, cfg.Port, cfg.Database)
}

// partitioned refuses replace for a partitioned job and warns of append.
func (o *PostgresOptions) partitioned() (problem, warning error) {
	switch o.mode() {
	case pgReplace:
		return errors.New("mode: replace would make every partition replace the whole table: use replacePartition (with partitionColumn), merge or append"), nil
	case pgAppend:
		return nil, errors.New("mode: append is not idempotent: re-running a partition, or resuming after a commit that failed in another sink, appends its rows again; prefer replacePartition (with partitionColumn) or merge")
	}
	return nil, nil
}

// incremental refuses replace (each run would leave the new rows only) and
// append with a lookback (the margin would be loaded again at every run),
// and warns of append.
func (o *PostgresOptions) incremental(lookback bool) (problem, warning error) {
	switch o.mode() {
	case pgReplace:
		return errors.New("mode: replace would leave only each run's new rows in the table: use merge (with key)"), nil
	case pgAppend:
		if lookback {
			return errors.New("mode: append with incremental.lookback would load the rows of the lookback again at every run: use mode merge (with key), which updates them"), nil
		}
		return nil, errors.New("mode: append loads a window a second time when a run fails after its commit but before the watermark is saved: prefer merge (with key)")
	}
	return nil, nil
}
