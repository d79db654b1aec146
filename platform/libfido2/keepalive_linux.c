// Keydesk's own hidraw I/O for libfido2 on Linux, installed with
// fido_dev_set_io_functions so that every 64-byte report the key sends
// passes through kd_hid_read. libfido2 1.12 swallows CTAPHID_KEEPALIVE
// packets and has no callback for them; here each change of a request's
// keep-alive status (STATUS_PROCESSING, STATUS_UPNEEDED) is handed to Go,
// which turns it into "touch your key" and "processing" progress.
//
// Open, read and write follow libfido2's hid_linux.c and hid_unix.c
// (O_RDWR, a character device, an exclusive flock retried while another
// program holds the key, ppoll then one read per report), with the
// 64-byte reports every FIDO HID key uses: libfido2 assumes them too for
// I/O it does not own.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <fido.h>

#include "_cgo_export.h"

enum {
	kd_report_len = 64,    // CTAPHID report (§11.2.4)
	kd_cmd_keepalive = 0xbb, // CTAPHID_KEEPALIVE | TYPE_INIT (§11.2.9.1.7)
	kd_cmd_cancel = 0x91,    // CTAPHID_CANCEL | TYPE_INIT
	kd_flock_retries = 20,
};

struct kd_hid {
	int fd;
	uintptr_t token;       // Go's cgo.Handle of the observer, 0 for none
	unsigned char cid[4];  // the channel of the request written last
	int status;            // the request's last keep-alive status, 0 for none
};

// kd_open_token passes the observer to kd_hid_open, which libfido2 calls
// with the path only; the Go caller sets it on the same locked thread.
static __thread uintptr_t kd_open_token;

static int kd_open_locked(const char *path, int *waited) {
	struct stat st;
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd == -1)
		return -1;
	if (fstat(fd, &st) == -1 || !S_ISCHR(st.st_mode)) {
		close(fd);
		return -1;
	}
	for (long retries = 1; flock(fd, LOCK_EX | LOCK_NB) == -1; retries++) {
		if (errno != EWOULDBLOCK || retries > kd_flock_retries) {
			close(fd);
			return -1;
		}
		*waited = 1;
		struct timespec pause = {
			.tv_sec = retries / 10, .tv_nsec = (retries % 10) * 100000000L,
		};
		nanosleep(&pause, NULL);
	}
	return fd;
}

static void *kd_hid_open(const char *path) {
	int waited = 0;
	if (kd_open_token == 0)
		return NULL; // not set up by kd_observe_io on this thread
	int fd = kd_open_locked(path, &waited);
	if (fd != -1 && waited) {
		// As libfido2 does: after waiting for another program, open the
		// node afresh, in case the key was unplugged meanwhile.
		close(fd);
		waited = 0;
		fd = kd_open_locked(path, &waited);
	}
	if (fd == -1)
		return NULL;
	struct kd_hid *h = calloc(1, sizeof(*h));
	if (h == NULL) {
		close(fd);
		return NULL;
	}
	h->fd = fd;
	h->token = kd_open_token;
	kd_open_token = 0; // one open per kd_observe_io
	return h;
}

static void kd_hid_close(void *handle) {
	struct kd_hid *h = handle;
	close(h->fd);
	free(h);
}

static int kd_hid_read(void *handle, unsigned char *buf, size_t len, int ms) {
	struct kd_hid *h = handle;
	struct pollfd pfd = {.fd = h->fd, .events = POLLIN};
	struct timespec ts, *tsp = NULL;
	if (len != kd_report_len)
		return -1;
	if (ms > -1) {
		ts.tv_sec = ms / 1000;
		ts.tv_nsec = (ms % 1000) * 1000000L;
		tsp = &ts;
	}
	if (ppoll(&pfd, 1, tsp, NULL) < 1)
		return -1;
	ssize_t r = read(h->fd, buf, len);
	if (r != (ssize_t)len)
		return -1;
	if (h->token != 0 && buf[4] == kd_cmd_keepalive && memcmp(buf, h->cid, 4) == 0 &&
	    buf[7] != h->status) {
		h->status = buf[7];
		kdKeepalive(h->token, h->status);
	}
	return (int)r;
}

static int kd_hid_write(void *handle, const unsigned char *buf, size_t len) {
	struct kd_hid *h = handle;
	if (len != kd_report_len + 1)
		return -1;
	// buf[0] is the report ID, then the channel and the command. A new
	// request (an initialization packet other than CTAPHID_CANCEL, which
	// fido_dev_cancel sends from another thread while a read waits) sets
	// the channel and clears the status; nothing else touches them.
	if ((buf[5] & 0x80) != 0 && buf[5] != kd_cmd_cancel) {
		memcpy(h->cid, buf + 1, 4);
		h->status = 0;
	}
	ssize_t r = write(h->fd, buf, len);
	return r == (ssize_t)len ? (int)r : -1;
}

int kd_observe_io(fido_dev_t *dev, uintptr_t token) {
	static const fido_dev_io_t io = {kd_hid_open, kd_hid_close, kd_hid_read, kd_hid_write};
	kd_open_token = token;
	return fido_dev_set_io_functions(dev, &io);
}
