// Package posixlocale keeps Fyne from complaining on stderr, in every
// keydesk process, that it cannot parse a "C.UTF-8" locale (the usual one
// of containers, CI runners and cron): its translations package reads the
// locale while it initializes, and logs "Error parsing user locale C" for
// a C or POSIX locale with a codeset. This package only imports os and
// strings, so it initializes before Fyne does (packages initialize
// dependencies first, then in import path order among the ready ones),
// and it gives such a locale the language Fyne falls back to anyway:
// LANGUAGE=en, which gettext consults only when the locale is not plain C.
package posixlocale

import (
	"os"
	"strings"
)

func init() {
	if os.Getenv("LANGUAGE") != "" {
		return
	}
	for _, env := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		v := os.Getenv(env)
		if v == "" {
			continue
		}
		lang, _, _ := strings.Cut(v, ".")
		lang, _, _ = strings.Cut(lang, "@")
		if v != lang && (lang == "C" || lang == "POSIX") {
			os.Setenv("LANGUAGE", "en")
		}
		return
	}
}
