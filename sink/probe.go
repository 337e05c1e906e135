package sink

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"
)

// ProbeLocal checks, without publishing anything, that a file could be
// published at path: the nearest folder on the way to it that exists is a
// folder in which a file can be created (a probe file is created there and
// removed), and path itself is not a folder. It returns the folder probed,
// and whether the folders below it will have to be created.
func ProbeLocal(path string) (probed string, create bool, err error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", false, err
	}
	if st, err := os.Stat(abs); err == nil && st.IsDir() {
		return "", false, fmt.Errorf("%s is a folder: the path must name the file to write", abs)
	}
	dir := filepath.Dir(abs)
	for {
		st, err := os.Stat(dir)
		if err == nil {
			if !st.IsDir() {
				return dir, false, fmt.Errorf("%s is a file, so the folder %s cannot be created in its place", dir, filepath.Dir(abs))
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return dir, false, fmt.Errorf("check the folder %s: %w", dir, err)
		}
		create = true
		parent := filepath.Dir(dir)
		if parent == dir {
			return dir, create, fmt.Errorf("no folder of %s exists", abs)
		}
		dir = parent
	}
	f, err := os.CreateTemp(dir, ".pbicopy-probe-*")
	if err != nil {
		return dir, create, fmt.Errorf("cannot create a file in %s: %w", dir, errors.Unwrap(err))
	}
	name := f.Name()
	_ = f.Close()
	if err := os.Remove(name); err != nil {
		return dir, create, fmt.Errorf("remove the probe file %s: %w", name, err)
	}
	return dir, create, nil
}

// ProbePostgres checks, without changing anything, that a load with opts
// could run: it connects, begins a transaction, finds the schema and the
// table, checks the role's privileges for the mode (USAGE on the schema;
// INSERT on the table, DELETE for replace and replacePartition, UPDATE for
// merge; TEMPORARY on the database for merge and replacePartition; CREATE
// on the schema when the table is to be created), and rolls back. It
// returns what it found; each error says what is missing and the statement
// that grants it. Passwords in the DSN never show in its text.
func ProbePostgres(ctx context.Context, opts PostgresOptions) (string, error) {
	if err := opts.Validate(); err != nil {
		return "", err
	}
	schemaName, tableName, _ := pgParseTable(opts.Table)
	cfg, err := pgx.ParseConfig(opts.DSN)
	if err != nil {
		return "", fmt.Errorf("parse dsn: %s", pgRedact(err.Error(), opts.DSN))
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "pbicopy validate"
	}
	desc, err := probePostgres(ctx, cfg, opts, schemaName, tableName)
	return desc, pgRedactErr(err, opts.DSN)
}

func probePostgres(ctx context.Context, cfg *pgx.ConnConfig, opts PostgresOptions, schemaName, tableName string) (string, error) {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return "", fmt.Errorf("connect: %w: check the dsn (host, port, user, password or PGPASSWORD, sslmode) and that the server accepts connections from here", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tx, err := conn.Begin(ctx)
	if err != nil {
		return "", fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	var role string
	if err := tx.QueryRow(ctx, "select current_user").Scan(&role); err != nil {
		return "", fmt.Errorf("read the role: %w", err)
	}
	roleSQL := pgx.Identifier{role}.Sanitize()
	if schemaName == "" {
		var cur *string
		if err := tx.QueryRow(ctx, "select current_schema()").Scan(&cur); err != nil {
			return "", fmt.Errorf("resolve the schema: %w", err)
		}
		if cur == nil {
			return "", fmt.Errorf("the search_path names no existing schema: qualify the table name (schema.table)")
		}
		schemaName = *cur
	}
	name := pgDisplayName(schemaName, tableName)
	schemaSQL := pgx.Identifier{schemaName}.Sanitize()

	var usage, create bool
	err = tx.QueryRow(ctx, `select has_schema_privilege(oid, 'USAGE'), has_schema_privilege(oid, 'CREATE') from pg_namespace where nspname = $1`, schemaName).Scan(&usage, &create)
	if errors.Is(err, pgx.ErrNoRows) && opts.CreateSchema && opts.createTable() {
		return probeCreateSchema(ctx, tx, name, schemaName, role)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("schema %s does not exist: create it (CREATE SCHEMA %s), set createSchema: true, or fix the table name", pgDisplayName(schemaName), schemaSQL)
	}
	if err != nil {
		return "", fmt.Errorf("read schema %s: %w", pgDisplayName(schemaName), err)
	}
	if !usage {
		return "", fmt.Errorf("role %s cannot use schema %s: GRANT USAGE ON SCHEMA %s TO %s", role, pgDisplayName(schemaName), schemaSQL, roleSQL)
	}

	var missing []string
	if m := opts.mode(); m == pgMerge || m == pgReplacePartition {
		var temp bool
		if err := tx.QueryRow(ctx, `select has_database_privilege(current_database(), 'TEMPORARY')`).Scan(&temp); err != nil {
			return "", fmt.Errorf("read database privileges: %w", err)
		}
		if !temp {
			var db string
			_ = tx.QueryRow(ctx, "select current_database()").Scan(&db)
			return "", fmt.Errorf("mode %s loads through a temporary table, and role %s may not create one: GRANT TEMPORARY ON DATABASE %s TO %s", m, role, pgx.Identifier{db}.Sanitize(), roleSQL)
		}
	}

	var oid uint32
	err = tx.QueryRow(ctx, `select c.oid from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and c.relname = $2 and c.relkind in ('r', 'p')`, schemaName, tableName).Scan(&oid)
	if errors.Is(err, pgx.ErrNoRows) {
		switch {
		case !opts.createTable():
			return "", fmt.Errorf("table %s does not exist and createTable is false: create it, or set createTable: true", name)
		case !create:
			return "", fmt.Errorf("table %s does not exist and role %s cannot create it: GRANT CREATE ON SCHEMA %s TO %s, or create the table", name, role, schemaSQL, roleSQL)
		}
		return fmt.Sprintf("table %s will be created (role %s has CREATE on schema %s)", name, role, pgDisplayName(schemaName)), nil
	}
	if err != nil {
		return "", fmt.Errorf("look up table %s: %w", name, err)
	}
	need := []string{"INSERT"}
	switch opts.mode() {
	case pgReplace:
		need = append(need, "DELETE")
	case pgReplacePartition:
		// Its DELETE ... WHERE reads the table.
		need = append(need, "DELETE", "SELECT")
	case pgMerge:
		// INSERT ... ON CONFLICT DO UPDATE reads the conflicting rows.
		need = append(need, "UPDATE", "SELECT")
	}
	for _, p := range need {
		var ok bool
		if err := tx.QueryRow(ctx, `select has_table_privilege($1::oid, $2)`, oid, p).Scan(&ok); err != nil {
			return "", fmt.Errorf("read privileges on %s: %w", name, err)
		}
		if !ok {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("role %s lacks %s on table %s (mode %s needs %s): GRANT %s ON %s TO %s",
			role, strings.Join(missing, ", "), name, opts.mode(), strings.Join(need, ", "), strings.Join(need, ", "), pgx.Identifier{schemaName, tableName}.Sanitize(), roleSQL)
	}
	return fmt.Sprintf("table %s exists; role %s has %s", name, role, strings.Join(need, ", ")), nil
}

// probeCreateSchema checks that the role may create the missing schema of
// a load with createSchema: true, and the temporary table such a load
// stages its rows in.
func probeCreateSchema(ctx context.Context, tx pgx.Tx, name, schemaName, role string) (string, error) {
	var db string
	var create, temp bool
	if err := tx.QueryRow(ctx, `select current_database(), has_database_privilege(current_database(), 'CREATE'), has_database_privilege(current_database(), 'TEMPORARY')`).Scan(&db, &create, &temp); err != nil {
		return "", fmt.Errorf("read database privileges: %w", err)
	}
	dbSQL, roleSQL := pgx.Identifier{db}.Sanitize(), pgx.Identifier{role}.Sanitize()
	switch {
	case !create:
		return "", fmt.Errorf("schema %s does not exist and role %s cannot create it: GRANT CREATE ON DATABASE %s TO %s, or create the schema", pgDisplayName(schemaName), role, dbSQL, roleSQL)
	case !temp:
		return "", fmt.Errorf("schema %s does not exist, and the load that creates it stages its rows in a temporary table, which role %s may not create: GRANT TEMPORARY ON DATABASE %s TO %s", pgDisplayName(schemaName), role, dbSQL, roleSQL)
	}
	return fmt.Sprintf("schema %s and table %s will be created (createSchema; role %s has CREATE on database %s)", pgDisplayName(schemaName), name, role, db), nil
}
