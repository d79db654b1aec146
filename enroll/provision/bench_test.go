package provision_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keydesk/keydesk/enroll/provision"
	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/rp/rptest"
)

// timedPlugger is a plugger whose Next time (the operator's hands: taking
// the next key, plugging it in) is left out of the measurement.
type timedPlugger struct {
	plugger
	mu    sync.Mutex
	hands time.Duration
}

func (p *timedPlugger) Next(ctx context.Context) (platform.Authenticator, error) {
	start := time.Now()
	k, err := p.plugger.Next(ctx)
	p.mu.Lock()
	p.hands += time.Since(start)
	p.mu.Unlock()
	return k, err
}

// BenchmarkProvisionBatch provisions b.N keys in one batch (make
// bench-provision runs 200) and reports the software time per key: the
// run's time less the plugging in of keys. The software keys approve
// touches at once, so no touch is waited for; what remains is Keydesk,
// libfido2, the software key's own work and the reference RP on
// loopback, every step of issue 9's pipeline included (reset check, PIN,
// enrollment, verifying sign-in, PIN rules, PIN page, journal).
func BenchmarkProvisionBatch(b *testing.B) {
	e := newEnv(b, rptest.ServerOptions{})
	var users []provision.User
	for i := range b.N {
		users = append(users, provision.User{Name: fmt.Sprintf("bench%04d", i)})
	}
	for _, u := range users {
		e.users(b, u.Name)
	}
	keys := &timedPlugger{plugger: plugger{tb: b}}
	cfg := provision.BatchConfig{
		Provision: e.config(nil), Users: users, Dir: b.TempDir(), Keys: keys, Retry: 20 * time.Millisecond,
	}
	b.ResetTimer()
	start := time.Now()
	sum, err := provision.RunBatch(context.Background(), cfg)
	elapsed := time.Since(start)
	b.StopTimer()
	if err != nil || sum.Enrolled != b.N {
		b.Fatalf("%+v, %v", sum, err)
	}
	soft := elapsed - keys.hands
	b.ReportMetric(float64(soft.Microseconds())/1000/float64(b.N), "ms/key")
	b.ReportMetric(float64(keys.hands.Microseconds())/1000/float64(b.N), "plug-ms/key")
}
