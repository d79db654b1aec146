package bench

import (
	"fmt"
	"io"
	"time"
)

// The targets of issue 5's "Performance" section.
const (
	// p95Target bounds the p95 ceremony latency at p95Concurrency, on
	// every backend.
	p95Target      = 20 * time.Millisecond
	p95Concurrency = 16
	// ratioTarget is the least share of the bare validation loop's rate
	// that end-to-end ceremonies reach on ratioBackend, at the best level.
	ratioTarget  = 0.25
	ratioBackend = BackendSQLite
)

// writeTable prints the results as a Markdown table.
func writeTable(w io.Writer, results []levelResult, bare bareResult) {
	fmt.Fprintf(w, "| backend | concurrency | ceremonies/s | p50 ms | p95 ms | p99 ms | CPU us/ceremony | ratio to bare | errors |\n")
	fmt.Fprintf(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range results {
		fmt.Fprintf(w, "| %s | %d | %.0f | %s | %s | %s | %s | %s | %d |\n",
			r.backend, r.concurrency, r.perSecond(),
			ms(r.percentile(0.50)), ms(r.percentile(0.95)), ms(r.percentile(0.99)), us(r.cpuPerCeremony()),
			ratio(r.perSecond(), bare.perSecond()), r.errors)
	}
	fmt.Fprintf(w, "\nBare: %.0f webauthn.ValidateLogin/s in one goroutine. Latency is a ceremony's two HTTP round trips\n"+
		"(begin + finish) as the client sees them; the key's signing between them is left out. The\n"+
		"server, the software keys and the load generator share this process and its CPUs; CPU is the\n"+
		"process's CPU time in the measured window per ceremony (all of them, the bare loop's excepted).\n", bare.perSecond())
}

// ratio formats a/b as a percentage.
func ratio(a, b float64) string {
	if b <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f%%", 100*a/b)
}

// writeTargets prints PASS or FAIL for each target, or SKIP when the run
// did not measure what it needs.
func writeTargets(w io.Writer, results []levelResult, bare bareResult) {
	for _, want := range []string{BackendSQLite, BackendPostgres} {
		target := fmt.Sprintf("p95 < %d ms at concurrency %d on %s", p95Target/time.Millisecond, p95Concurrency, want)
		var found *levelResult
		for i := range results {
			if results[i].backend == want && results[i].concurrency == p95Concurrency {
				found = &results[i]
			}
		}
		switch {
		case found == nil:
			fmt.Fprintf(w, "SKIP %s: not measured in this run\n", target)
		case found.n == 0:
			fmt.Fprintf(w, "FAIL %s: no ceremony succeeded\n", target)
		default:
			p95 := found.percentile(0.95)
			fmt.Fprintf(w, "%s %s: p95 %s ms\n", verdict(p95 < p95Target), target, ms(p95))
		}
	}

	target := fmt.Sprintf("end-to-end >= %.0f%% of bare validation on %s (best concurrency)", 100*ratioTarget, ratioBackend)
	var best *levelResult
	for i := range results {
		if results[i].backend == ratioBackend && (best == nil || results[i].perSecond() > best.perSecond()) {
			best = &results[i]
		}
	}
	if best == nil || bare.perSecond() <= 0 {
		fmt.Fprintf(w, "SKIP %s: not measured in this run\n", target)
		return
	}
	share := best.perSecond() / bare.perSecond()
	fmt.Fprintf(w, "%s %s: %.0f ceremonies/s at concurrency %d = %s of %.0f validations/s\n",
		verdict(share >= ratioTarget), target, best.perSecond(), best.concurrency, ratio(best.perSecond(), bare.perSecond()), bare.perSecond())
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}
