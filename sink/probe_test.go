package sink

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestProbeLocal(t *testing.T) {
	dir := t.TempDir()
	probed, create, err := ProbeLocal(filepath.Join(dir, "out.csv"))
	if err != nil || probed != dir || create {
		t.Errorf("existing folder: %q %v %v", probed, create, err)
	}
	probed, create, err = ProbeLocal(filepath.Join(dir, "a", "b", "out.csv"))
	if err != nil || probed != dir || !create {
		t.Errorf("folders to create: %q %v %v", probed, create, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); !os.IsNotExist(err) {
		t.Errorf("the probe created a folder: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("the probe left %v behind", entries)
	}
	if _, _, err := ProbeLocal(dir); err == nil || !strings.Contains(err.Error(), "is a folder") {
		t.Errorf("a folder as the path: %v", err)
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ProbeLocal(filepath.Join(file, "out.csv")); err == nil || !strings.Contains(err.Error(), "is a file") {
		t.Errorf("a file in the way: %v", err)
	}
	if os.Geteuid() != 0 {
		ro := filepath.Join(dir, "ro")
		if err := os.Mkdir(ro, 0o555); err != nil {
			t.Fatal(err)
		}
		if _, _, err := ProbeLocal(filepath.Join(ro, "x", "out.csv")); err == nil || !strings.Contains(err.Error(), "cannot create a file in "+ro) {
			t.Errorf("read-only folder: %v", err)
		}
	}
}

func TestProbePostgresIntegration(t *testing.T) {
	db := pgtOpen(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	role := fmt.Sprintf("pbicopy_probe_%08x", rand.Uint32())
	db.Exec("create role " + role + " nologin")
	t.Cleanup(func() {
		_, _ = db.Conn.Exec(context.Background(), "drop owned by "+role)
		_, _ = db.Conn.Exec(context.Background(), "drop role "+role)
	})
	db.Exec("create table " + db.Table("t") + " (id bigint primary key)")
	// The test's superuser connects, then acts as the role.
	asRole := db.DSN() + " options='-c role=" + role + "'"
	opts := func(table, mode string) PostgresOptions {
		o := PostgresOptions{DSN: asRole, Table: db.Table(table), Mode: mode}
		switch mode {
		case pgMerge:
			o.Key = []string{"id"}
		case pgReplacePartition:
			o.PartitionColumn = "id"
		}
		return o
	}
	schema := pgx.Identifier{db.Schema}.Sanitize()

	check := func(name string, o PostgresOptions, want string) {
		t.Helper()
		desc, err := ProbePostgres(ctx, o)
		got := desc
		if err != nil {
			got = "error: " + err.Error()
		}
		if !strings.Contains(got, want) {
			t.Errorf("%s: %s\nwant it to contain %q", name, got, want)
		}
	}
	check("no usage", opts("t", "append"), "cannot use schema "+db.Schema+": GRANT USAGE ON SCHEMA "+schema+" TO "+pgx.Identifier{role}.Sanitize())
	db.Exec("grant usage on schema " + schema + " to " + role)
	check("no insert", opts("t", "append"), "lacks INSERT on table "+db.Schema+".t (mode append needs INSERT): GRANT INSERT ON "+db.Table("t")+" TO "+pgx.Identifier{role}.Sanitize())
	db.Exec("grant insert on " + db.Table("t") + " to " + role)
	check("append", opts("t", "append"), "table "+db.Schema+".t exists; role "+role+" has INSERT")
	check("replace", opts("t", "replace"), "lacks DELETE")
	check("merge", opts("t", "merge"), "lacks UPDATE")
	db.Exec("grant delete, update on " + db.Table("t") + " to " + role)
	check("replace granted", opts("t", "replace"), "has INSERT, DELETE")
	check("missing, no create", opts("new", "append"), "does not exist and role "+role+" cannot create it: GRANT CREATE ON SCHEMA")
	no := false
	o := opts("new", "append")
	o.CreateTable = &no
	check("missing, createTable false", o, "createTable is false")
	db.Exec("grant create on schema " + schema + " to " + role)
	check("will be created", opts("new", "append"), "will be created")
	check("no schema", PostgresOptions{DSN: asRole, Table: "no_such_schema_x.t"}, "schema no_such_schema_x does not exist")
	check("bad password", PostgresOptions{DSN: "host=127.0.0.1 port=1 user=x password=s3cr3t-pw connect_timeout=2", Table: "a.b"}, "connect:")
	if _, err := ProbePostgres(ctx, PostgresOptions{DSN: "postgres://x:s3cr3t-pw@127.0.0.1:1/db?connect_timeout=2", Table: "a.b"}); err == nil || strings.Contains(err.Error(), "s3cr3t-pw") {
		t.Errorf("the password shows, or no error: %v", err)
	}
	var n int
	if err := db.Conn.QueryRow(ctx, "select count(*) from pg_tables where schemaname = $1", db.Schema).Scan(&n); err != nil || n != 1 {
		t.Errorf("the probe changed the schema: %d tables, %v", n, err)
	}
}
