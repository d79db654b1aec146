package bench

import (
	"github.com/keydesk/keydesk/rp/storage/pgtest"
)

// newDatabase creates a database on srv and returns its URL and a
// function dropping it.
func newDatabase(srv *pgtest.Server) (dsn string, drop func() error, err error) {
	return srv.CreateDatabase("rpbench")
}
