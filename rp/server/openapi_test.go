package server_test

import (
	"bufio"
	"bytes"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/keydesk/keydesk/rp/api"
	"github.com/keydesk/keydesk/rp/server"
)

// documentedRoutes reads "METHOD /path" pairs from the paths section of
// the OpenAPI document, which is written two spaces a level.
func documentedRoutes(t *testing.T) []string {
	t.Helper()
	var out []string
	var path string
	inPaths := false
	sc := bufio.NewScanner(bytes.NewReader(api.OpenAPI))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "paths:":
			inPaths = true
		case inPaths && line != "" && !strings.HasPrefix(line, " "):
			inPaths = false
		case inPaths && strings.HasPrefix(line, "  /") && strings.HasSuffix(line, ":"):
			path = strings.TrimSuffix(strings.TrimSpace(line), ":")
		case inPaths && strings.HasPrefix(line, "    ") && !strings.HasPrefix(line, "     "):
			m := strings.TrimSuffix(strings.TrimSpace(line), ":")
			if slices.Contains([]string{"get", "post", "put", "patch", "delete"}, m) {
				out = append(out, strings.ToUpper(m)+" "+path)
			}
		}
	}
	return out
}

// TestOpenAPIDocumentsEveryRoute keeps the document and the server equal:
// every route served is documented, and nothing documented is missing.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	e := newEnv(t, backends[0].dsn)
	s, err := server.New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	served := slices.Sorted(maps.Keys(s.RouteAccess()))
	documented := documentedRoutes(t)
	slices.Sort(documented)
	if !slices.Equal(served, documented) {
		t.Fatalf("served:\n%s\ndocumented:\n%s", strings.Join(served, "\n"), strings.Join(documented, "\n"))
	}
}
