package sqlstore

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestRewrite(t *testing.T) {
	sqlite := &Dialect{Name: "sqlite", Blob: "BLOB", NumberedQuestion: true}
	postgres := &Dialect{Name: "postgres", Blob: "BYTEA", RowLocks: true}
	tests := []struct {
		name         string
		in           string
		sqlite, pg   string
		wantErrorSub string
	}{
		{name: "ShouldNumberQuestionMarksForSQLite",
			in:     `SELECT a FROM t WHERE b = $1 AND c = $12`,
			sqlite: `SELECT a FROM t WHERE b = ?1 AND c = ?12`,
			pg:     `SELECT a FROM t WHERE b = $1 AND c = $12`},
		{name: "ShouldExpandBlob",
			in:     `CREATE TABLE t (b {{blob}} NOT NULL)`,
			sqlite: `CREATE TABLE t (b BLOB NOT NULL)`,
			pg:     `CREATE TABLE t (b BYTEA NOT NULL)`},
		{name: "ShouldLockRowsOnlyWhereThereAreRowLocks",
			in:     `SELECT seq FROM h WHERE id = 1{{forUpdate}}`,
			sqlite: `SELECT seq FROM h WHERE id = 1`,
			pg:     `SELECT seq FROM h WHERE id = 1 FOR UPDATE`},
		{name: "ShouldLeaveStringLiteralsAlone",
			in:     `SELECT '$1 {{blob}} it''s' WHERE x = $1`,
			sqlite: `SELECT '$1 {{blob}} it''s' WHERE x = ?1`,
			pg:     `SELECT '$1 {{blob}} it''s' WHERE x = $1`},
		{name: "ShouldLeaveCommentsAlone",
			in:     "-- the user's $1 {{nothing}}\nSELECT $1 -- it's\n",
			sqlite: "-- the user's $1 {{nothing}}\nSELECT ?1 -- it's\n",
			pg:     "-- the user's $1 {{nothing}}\nSELECT $1 -- it's\n"},
		{name: "ShouldLeaveDollarsWithoutDigitsAlone", in: `SELECT $x`, sqlite: `SELECT $x`, pg: `SELECT $x`},
		{name: "ShouldRefuseAnUnknownToken", in: `SELECT {{nope}}`, wantErrorSub: "unknown token"},
		{name: "ShouldRefuseAnUnclosedToken", in: `SELECT {{blob`, wantErrorSub: "unclosed"},
		{name: "ShouldRefuseAnUnterminatedString", in: `SELECT 'a`, wantErrorSub: "unterminated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, d := range []struct {
				d    *Dialect
				want string
			}{{sqlite, tt.sqlite}, {postgres, tt.pg}} {
				got, err := d.d.rewrite(tt.in)
				if tt.wantErrorSub != "" {
					if err == nil || !strings.Contains(err.Error(), tt.wantErrorSub) {
						t.Errorf("%s: rewrite(%q) = %q, %v; want an error about %q", d.d.Name, tt.in, got, err, tt.wantErrorSub)
					}
					continue
				}
				if err != nil || got != d.want {
					t.Errorf("%s: rewrite(%q) = %q, %v; want %q", d.d.Name, tt.in, got, err, d.want)
				}
			}
		})
	}
}

func TestLoadMigrations(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	tests := []struct {
		name         string
		fs           fstest.MapFS
		want         []string
		wantErrorSub string
	}{
		{name: "ShouldOrderByNumber", fs: fstest.MapFS{
			"migrations/0002_b.sql": file("B"),
			"migrations/0010_j.sql": file("J"),
			"migrations/0001_a.sql": file("A"),
			"migrations/0003_c.sql": file("C"),
			"migrations/0004_d.sql": file("D"),
			"migrations/0005_e.sql": file("E"),
			"migrations/0006_f.sql": file("F"),
			"migrations/0007_g.sql": file("G"),
			"migrations/0008_h.sql": file("H"),
			"migrations/0009_i.sql": file("I"),
			"migrations/README.txt": file("not a migration"),
		}, want: []string{"0001_a", "0002_b", "0003_c", "0004_d", "0005_e", "0006_f", "0007_g", "0008_h", "0009_i", "0010_j"}},
		{name: "ShouldRefuseAGap", fs: fstest.MapFS{
			"migrations/0001_a.sql": file("A"),
			"migrations/0003_c.sql": file("C"),
		}, wantErrorSub: "want version 2"},
		{name: "ShouldRefuseARepeat", fs: fstest.MapFS{
			"migrations/0001_a.sql": file("A"),
			"migrations/0001_b.sql": file("B"),
		}, wantErrorSub: "want version 2"},
		{name: "ShouldRefuseAnUnnumberedName", fs: fstest.MapFS{
			"migrations/init.sql": file("A"),
		}, wantErrorSub: "NNNN_name.sql"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := loadMigrations(tt.fs)
			if tt.wantErrorSub != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErrorSub) {
					t.Fatalf("loadMigrations = %v, want an error about %q", err, tt.wantErrorSub)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range ms {
				got = append(got, m.name)
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("migrations %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEmbeddedMigrationsRewriteForEveryDialect(t *testing.T) {
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 {
		t.Fatal("no migrations embedded")
	}
	for _, d := range []*Dialect{{Name: "sqlite", Blob: "BLOB", NumberedQuestion: true}, {Name: "postgres", Blob: "BYTEA", RowLocks: true}} {
		for _, m := range ms {
			q, err := d.rewrite(m.sql)
			if err != nil {
				t.Errorf("%s: %s: %v", d.Name, m.name, err)
			}
			if strings.Contains(q, "{{") {
				t.Errorf("%s: %s: a token is left", d.Name, m.name)
			}
		}
	}
}

func TestEscapeLike(t *testing.T) {
	for in, want := range map[string]string{
		"plain": "plain", "100%": `100\%`, "a_b": `a\_b`, `back\slash`: `back\\slash`,
	} {
		if got := escapeLike(in); got != want {
			t.Errorf("escapeLike(%q) = %q, want %q", in, got, want)
		}
	}
}
