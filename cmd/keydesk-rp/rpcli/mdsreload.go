package rpcli

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/keydesk/keydesk/rp/mds"
	"github.com/keydesk/keydesk/rp/server"
)

// mdsWatcher reloads the FIDO metadata BLOB into a running server: on
// SIGHUP, and when the file changes (checked every interval), so that a
// job that drops a fresh BLOB in place (FIDO publishes one a month) needs
// no restart. A BLOB that does not load leaves the one in use.
type mdsWatcher struct {
	path     string
	opts     mds.Options
	srv      *server.Server
	log      *slog.Logger
	interval time.Duration
	hup      chan os.Signal
	seen     fileStamp
}

// fileStamp is what tells that a file was replaced or rewritten.
type fileStamp struct {
	mod  time.Time
	size int64
}

func stamp(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{fi.ModTime(), fi.Size()}
}

// newMDSWatcher starts listening for SIGHUP at once, so that a signal sent
// as soon as serve announces itself is not lost; run does the rest.
func newMDSWatcher(path string, opts mds.Options, srv *server.Server, log *slog.Logger, interval time.Duration) *mdsWatcher {
	w := &mdsWatcher{path: path, opts: opts, srv: srv, log: log, interval: interval,
		hup: make(chan os.Signal, 1), seen: stamp(path)}
	signal.Notify(w.hup, syscall.SIGHUP)
	return w
}

// run reloads until ctx ends.
func (w *mdsWatcher) run(ctx context.Context) {
	defer signal.Stop(w.hup)
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.hup:
			w.reload("SIGHUP")
		case <-t.C:
			if s := stamp(w.path); s != w.seen && s != (fileStamp{}) {
				w.reload("file changed")
			}
		}
	}
}

func (w *mdsWatcher) reload(reason string) {
	w.seen = stamp(w.path)
	provider, info, err := mds.Load(w.path, w.opts)
	if err == nil {
		err = w.srv.SetMDS(provider, info.NextUpdate)
	}
	if err != nil {
		w.log.Error("FIDO metadata not reloaded: the BLOB loaded before stays in use", "reason", reason, "err", err)
		return
	}
	w.log.Info("FIDO metadata reloaded", "reason", reason, "number", info.Number, "nextUpdate", info.NextUpdate,
		"entries", info.Entries, "expired", info.Expired)
}
