/*
 * vhid.c - LD_PRELOAD shim that makes a software FIDO2 key look like a
 * Linux hidraw character device to unmodified programs (libfido2,
 * fido2-token, ...).
 *
 * The key is served on an AF_UNIX SOCK_SEQPACKET socket; every datagram is
 * one HID report (64 bytes device-to-host, 65 bytes host-to-device: report
 * id 0x00 followed by 64 bytes, exactly what libfido2 writes to hidraw).
 *
 *   /dev/keydesk-vhidN  ->  Nth entry of KEYDESK_VHID_SOCKET (':'-separated)
 *
 * open() of such a path connects a socket instead; fstat()/stat() report a
 * character device; read/write/poll/flock work on the socket unchanged and
 * the HIDIOCGRDESCSIZE ioctl fails, so libfido2 falls back to 64-byte
 * reports.  Everything else passes through to the next definition
 * (dlsym(RTLD_NEXT)).  Nothing is printed unless KEYDESK_VHID_DEBUG=1.
 *
 * Build: cc -std=c11 -Wall -Wextra -O2 -fPIC -shared \
 *           -o build/vhid.so platform/vhid/vhid.c -ldl
 */

/* We define open() & co ourselves: no fortify inline wrappers, no
 * _FILE_OFFSET_BITS redirections. */
#undef _FORTIFY_SOURCE
#undef _FILE_OFFSET_BITS
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

#define VHID_PREFIX "/dev/keydesk-vhid"
#define VHID_PREFIX_LEN (sizeof(VHID_PREFIX) - 1)
#define VHID_ENV_SOCKET "KEYDESK_VHID_SOCKET"
#define VHID_ENV_DEBUG "KEYDESK_VHID_DEBUG"
#define VHID_MAX_INDEX 9999
#define VHID_MAJOR 240 /* "LOCAL/EXPERIMENTAL USE" char major */
#define VHID_SLOTS 64  /* simultaneously open virtual devices */
#define VHID_REPORT 64 /* HID report size */
#define VHID_RBUF 32   /* reports read ahead per device */
#define SUN_PATH_SIZE sizeof(((struct sockaddr_un *)0)->sun_path)

#define VHID_EXPORT __attribute__((visibility("default")))

/* Legacy glibc stat entry points (still exported by glibc >= 2.33 for old
 * binaries, no longer declared in its headers). */
VHID_EXPORT int __xstat(int, const char *, struct stat *);
VHID_EXPORT int __xstat64(int, const char *, struct stat64 *);
VHID_EXPORT int __lxstat(int, const char *, struct stat *);
VHID_EXPORT int __lxstat64(int, const char *, struct stat64 *);
VHID_EXPORT int __fxstat(int, int, struct stat *);
VHID_EXPORT int __fxstat64(int, int, struct stat64 *);
VHID_EXPORT int __fxstatat(int, int, const char *, struct stat *, int);
VHID_EXPORT int __fxstatat64(int, int, const char *, struct stat64 *, int);
/* Fortified open variants (declared only under _FORTIFY_SOURCE). */
VHID_EXPORT int __open_2(const char *, int);
VHID_EXPORT int __open64_2(const char *, int);
VHID_EXPORT int __openat_2(int, const char *, int);
VHID_EXPORT int __openat64_2(int, const char *, int);

/* ------------------------------------------------------------------ */
/* Debug output (only with KEYDESK_VHID_DEBUG=1), errno preserving.    */

static int vhid_debug_on(void)
{
	const char *v = getenv(VHID_ENV_DEBUG);
	return v != NULL && v[0] == '1' && v[1] == '\0';
}

__attribute__((format(printf, 1, 2))) static void dbg(const char *fmt, ...)
{
	int saved = errno;
	if (vhid_debug_on()) {
		char buf[512];
		int off = snprintf(buf, sizeof(buf), "vhid[%ld]: ", (long)getpid());
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(buf + off, sizeof(buf) - (size_t)off - 1, fmt, ap);
		va_end(ap);
		size_t len = (size_t)off + (n < 0 ? 0 : (size_t)n);
		if (len > sizeof(buf) - 2)
			len = sizeof(buf) - 2;
		buf[len++] = '\n';
		ssize_t w = write(STDERR_FILENO, buf, len);
		(void)w;
	}
	errno = saved;
}

/* ------------------------------------------------------------------ */
/* Real functions via dlsym(RTLD_NEXT), resolved lazily and cached.    */

static void *real_sym(void *_Atomic *cache, const char *name)
{
	void *p = atomic_load_explicit(cache, memory_order_acquire);
	if (p == NULL) {
		int saved = errno;
		p = dlsym(RTLD_NEXT, name);
		errno = saved;
		if (p != NULL)
			atomic_store_explicit(cache, p, memory_order_release);
	}
	return p;
}

#define REAL_DECL(name) static void *_Atomic real_##name##_p
#define REAL(name) ((__typeof__(&name))real_sym(&real_##name##_p, #name))
/* Call a real function, failing with ENOSYS if it does not exist. */
#define CALL_REAL(name, ...)                                                \
	(REAL(name) != NULL ? REAL(name)(__VA_ARGS__)                        \
			    : (errno = ENOSYS, -1))

REAL_DECL(open);
REAL_DECL(open64);
REAL_DECL(openat);
REAL_DECL(openat64);
REAL_DECL(__open_2);
REAL_DECL(__open64_2);
REAL_DECL(__openat_2);
REAL_DECL(__openat64_2);
REAL_DECL(close);
REAL_DECL(read);
REAL_DECL(flock);
REAL_DECL(ppoll);
REAL_DECL(poll);
REAL_DECL(stat);
REAL_DECL(stat64);
REAL_DECL(lstat);
REAL_DECL(lstat64);
REAL_DECL(fstat);
REAL_DECL(fstat64);
REAL_DECL(fstatat);
REAL_DECL(fstatat64);
REAL_DECL(__xstat);
REAL_DECL(__xstat64);
REAL_DECL(__lxstat);
REAL_DECL(__lxstat64);
REAL_DECL(__fxstat);
REAL_DECL(__fxstat64);
REAL_DECL(__fxstatat);
REAL_DECL(__fxstatat64);
REAL_DECL(getxattr);
REAL_DECL(lgetxattr);
REAL_DECL(listxattr);
REAL_DECL(llistxattr);
REAL_DECL(access);
REAL_DECL(faccessat);
#ifdef STATX_TYPE
REAL_DECL(statx);
#endif

/* ------------------------------------------------------------------ */
/* Virtual fd table.                                                    */

struct vslot {
	int fd;    /* -1 = free */
	int index; /* N of /dev/keydesk-vhidN */
	dev_t dev; /* identity of the socket, to detect fd reuse */
	ino_t ino;
	/* Read-ahead: reports taken from the socket in one recvmmsg and not
	 * yet handed to read(). libfido2 reads a response one 64-byte report
	 * at a time, each after a ppoll; on a VM every such system call costs
	 * microseconds, and a 1 kB response is 19 reports. */
	int held, next;
	/* Lock file standing in for the device node in flock(2): libfido2
	 * locks a hidraw device exclusively while it has it open, so two
	 * programs take turns instead of colliding mid-transaction. */
	int lockfd;
	size_t len[VHID_RBUF];
	unsigned char rbuf[VHID_RBUF][VHID_REPORT];
};

static pthread_mutex_t vtab_mu = PTHREAD_MUTEX_INITIALIZER;
static struct vslot vtab[VHID_SLOTS];
static int vtab_init_done; /* guarded by vtab_mu */
static atomic_int vtab_count; /* fast path: no virtual fds at all */

static void vtab_init_locked(void)
{
	if (!vtab_init_done) {
		for (int i = 0; i < VHID_SLOTS; i++)
			vtab[i].fd = -1;
		vtab_init_done = 1;
	}
}

static int vtab_add(int fd, int index, dev_t dev, ino_t ino)
{
	int ok = 0;
	pthread_mutex_lock(&vtab_mu);
	vtab_init_locked();
	for (int i = 0; i < VHID_SLOTS; i++) /* drop a stale entry */
		if (vtab[i].fd == fd) {
			vtab[i].fd = -1;
			atomic_fetch_sub(&vtab_count, 1);
		}
	for (int i = 0; i < VHID_SLOTS; i++)
		if (vtab[i].fd == -1) {
			vtab[i].fd = fd;
			vtab[i].index = index;
			vtab[i].dev = dev;
			vtab[i].ino = ino;
			vtab[i].held = vtab[i].next = 0;
			vtab[i].lockfd = -1;
			atomic_fetch_add(&vtab_count, 1);
			ok = 1;
			break;
		}
	pthread_mutex_unlock(&vtab_mu);
	return ok;
}

/* Returns the device index of fd, or -1. */
static int vtab_find(int fd, dev_t *dev, ino_t *ino)
{
	int index = -1;
	if (fd < 0 || atomic_load(&vtab_count) == 0)
		return -1;
	pthread_mutex_lock(&vtab_mu);
	vtab_init_locked();
	for (int i = 0; i < VHID_SLOTS; i++)
		if (vtab[i].fd == fd) {
			index = vtab[i].index;
			*dev = vtab[i].dev;
			*ino = vtab[i].ino;
			break;
		}
	pthread_mutex_unlock(&vtab_mu);
	return index;
}

static void vtab_forget(int fd)
{
	int lockfd = -1;
	if (fd < 0 || atomic_load(&vtab_count) == 0)
		return;
	pthread_mutex_lock(&vtab_mu);
	vtab_init_locked();
	for (int i = 0; i < VHID_SLOTS; i++)
		if (vtab[i].fd == fd) {
			vtab[i].fd = -1;
			vtab[i].held = vtab[i].next = 0;
			lockfd = vtab[i].lockfd;
			vtab[i].lockfd = -1;
			atomic_fetch_sub(&vtab_count, 1);
			dbg("forget fd %d", fd);
		}
	pthread_mutex_unlock(&vtab_mu);
	if (lockfd >= 0)
		CALL_REAL(close, lockfd); /* releases the device lock */
}

/* Read-ahead. */

/* vtab_slot returns fd's slot or NULL; the caller holds vtab_mu. */
static struct vslot *vtab_slot(int fd)
{
	vtab_init_locked();
	for (int i = 0; i < VHID_SLOTS; i++)
		if (vtab[i].fd == fd)
			return &vtab[i];
	return NULL;
}

/* vtab_take copies the next held report of fd into buf. It returns the
 * length copied, -1 when fd is not virtual, -2 when nothing is held. */
static ssize_t vtab_take(int fd, void *buf, size_t n)
{
	ssize_t r = -1;
	pthread_mutex_lock(&vtab_mu);
	struct vslot *v = vtab_slot(fd);
	if (v != NULL) {
		r = -2;
		if (v->next < v->held) {
			size_t l = v->len[v->next];
			if (l > n)
				l = n;
			memcpy(buf, v->rbuf[v->next], l);
			v->next++;
			r = (ssize_t)l;
		}
	}
	pthread_mutex_unlock(&vtab_mu);
	return r;
}

/* vtab_held reports whether fd is virtual and has reports held. */
static int vtab_held(int fd)
{
	int held = 0;
	pthread_mutex_lock(&vtab_mu);
	struct vslot *v = vtab_slot(fd);
	if (v != NULL)
		held = v->next < v->held;
	pthread_mutex_unlock(&vtab_mu);
	return held;
}

/* vhid_read_virtual reads a report of virtual fd, taking every report
 * already queued on the socket in the same system call. */
static ssize_t vhid_read_virtual(int fd, void *buf, size_t n)
{
	unsigned char bufs[VHID_RBUF][VHID_REPORT];
	struct mmsghdr msgs[VHID_RBUF];
	struct iovec iov[VHID_RBUF];
	memset(msgs, 0, sizeof(msgs));
	for (int i = 0; i < VHID_RBUF; i++) {
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = VHID_REPORT;
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	/* MSG_WAITFORONE: block (unless the fd is non-blocking) for the first
	 * report only, then take what is there. */
	int got = recvmmsg(fd, msgs, VHID_RBUF, MSG_WAITFORONE, NULL);
	if (got <= 0)
		return got;
	if (msgs[0].msg_len == 0)
		return 0; /* end of file */
	pthread_mutex_lock(&vtab_mu);
	struct vslot *v = vtab_slot(fd);
	if (v != NULL) {
		/* Keep unread reports in order: compact, then append. */
		int keep = v->held - v->next;
		memmove(v->rbuf, v->rbuf[v->next], (size_t)keep * VHID_REPORT);
		memmove(v->len, &v->len[v->next], (size_t)keep * sizeof(size_t));
		v->held = keep;
		v->next = 0;
		for (int i = 0; i < got && v->held < VHID_RBUF; i++) {
			if (msgs[i].msg_len == 0)
				break; /* end of file: the next read sees it */
			memcpy(v->rbuf[v->held], bufs[i], msgs[i].msg_len);
			v->len[v->held] = msgs[i].msg_len;
			v->held++;
		}
	}
	pthread_mutex_unlock(&vtab_mu);
	ssize_t r = vtab_take(fd, buf, n);
	return r >= 0 ? r : 0;
}

/* vhid_mark_held sets POLLIN on polled virtual fds with reports held and
 * returns how many entries have events. */
static int vhid_mark_held(struct pollfd *fds, nfds_t nfds)
{
	int count = 0;
	for (nfds_t i = 0; i < nfds; i++) {
		if ((fds[i].events & POLLIN) && vtab_held(fds[i].fd))
			fds[i].revents |= POLLIN;
		if (fds[i].revents != 0)
			count++;
	}
	return count;
}

/* vhid_held_count returns how many polled fds are virtual with reports
 * held (for POLLIN); 0 when none is, or no virtual fd is open. */
static nfds_t vhid_held_count(const struct pollfd *fds, nfds_t nfds)
{
	nfds_t n = 0;
	if (atomic_load(&vtab_count) == 0)
		return 0;
	for (nfds_t i = 0; i < nfds; i++)
		if ((fds[i].events & POLLIN) && vtab_held(fds[i].fd))
			n++;
	return n;
}

/* vhid_poll_held answers a poll in which some fds have reports held: the
 * others are looked at without waiting, and when there are no others the
 * kernel is not asked at all (libfido2 polls its one device before every
 * read). */
static int vhid_poll_held(struct pollfd *fds, nfds_t nfds, nfds_t held,
    int (*zero_wait)(struct pollfd *, nfds_t, const sigset_t *),
    const sigset_t *sigmask)
{
	for (nfds_t i = 0; i < nfds; i++)
		fds[i].revents = 0;
	if (held < nfds && zero_wait(fds, nfds, sigmask) < 0)
		for (nfds_t i = 0; i < nfds; i++)
			fds[i].revents = 0;
	return vhid_mark_held(fds, nfds);
}

/* ------------------------------------------------------------------ */
/* Paths.                                                               */

/* Returns N for "/dev/keydesk-vhidN", else -1. */
static int vhid_index(const char *path)
{
	if (path == NULL || strncmp(path, VHID_PREFIX, VHID_PREFIX_LEN) != 0)
		return -1;
	const char *p = path + VHID_PREFIX_LEN;
	if (*p < '0' || *p > '9' || (p[0] == '0' && p[1] != '\0'))
		return -1;
	int n = 0;
	for (; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		n = n * 10 + (*p - '0');
		if (n > VHID_MAX_INDEX)
			return -1;
	}
	return n;
}

/* Copies the index-th entry of KEYDESK_VHID_SOCKET into out (size
 * sizeof(sun_path)).  Returns 0, or an errno value. */
static int vhid_socket_path(int index, char *out, size_t outlen)
{
	const char *s = getenv(VHID_ENV_SOCKET);
	if (s == NULL)
		return ENOENT;
	for (int i = 0; i < index; i++) {
		s = strchr(s, ':');
		if (s == NULL)
			return ENOENT;
		s++;
	}
	const char *end = strchr(s, ':');
	size_t len = end != NULL ? (size_t)(end - s) : strlen(s);
	if (len == 0)
		return ENOENT;
	if (len >= outlen)
		return ENAMETOOLONG;
	memcpy(out, s, len);
	out[len] = '\0';
	return 0;
}

/* ------------------------------------------------------------------ */
/* Virtual open / stat.                                                 */

static int vhid_open(const char *path, int index, int flags)
{
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	int err = vhid_socket_path(index, sa.sun_path, sizeof(sa.sun_path));
	if (err != 0) {
		dbg("open %s: no socket configured (%s)", path, strerror(err));
		errno = err;
		return -1;
	}
	if (flags & O_DIRECTORY) {
		errno = ENOTDIR;
		return -1;
	}

	int saved = errno;
	int type = SOCK_SEQPACKET | ((flags & O_CLOEXEC) ? SOCK_CLOEXEC : 0);
	int fd = socket(AF_UNIX, type, 0);
	if (fd < 0) {
		dbg("open %s: socket: %s", path, strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		err = errno;
		dbg("open %s: connect %s: %s", path, sa.sun_path, strerror(err));
		CALL_REAL(close, fd);
		if (err == ECONNREFUSED || err == EPROTOTYPE)
			err = ENXIO; /* socket file exists, nobody listening */
		errno = err;
		return -1;
	}
	if ((flags & O_NONBLOCK) &&
	    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
		err = errno;
		CALL_REAL(close, fd);
		errno = err;
		return -1;
	}
	struct stat st;
	if (CALL_REAL(fstat, fd, &st) != 0) {
		err = errno;
		CALL_REAL(close, fd);
		errno = err;
		return -1;
	}
	if (!vtab_add(fd, index, st.st_dev, st.st_ino)) {
		dbg("open %s: too many virtual devices open", path);
		CALL_REAL(close, fd);
		errno = EMFILE;
		return -1;
	}
	dbg("open %s -> fd %d (socket %s)", path, fd, sa.sun_path);
	errno = saved;
	return fd;
}

/* Turn a stat buffer of the socket into the one of a char device. */
#define VHID_PATCH_STAT(st, index)                                         \
	do {                                                               \
		(st)->st_mode = S_IFCHR | ((st)->st_mode & 07777);         \
		(st)->st_rdev = makedev(VHID_MAJOR, (unsigned)(index));    \
		(st)->st_size = 0;                                         \
		(st)->st_blocks = 0;                                       \
	} while (0)

/* stat of a virtual path: stat the socket file (call), then patch.
 * Returns 0 or -1 with errno set. */
#define VHID_PATH_STAT(path, index, st, call)                               \
	do {                                                                \
		char sp_[sizeof(((struct sockaddr_un *)0)->sun_path)];      \
		int err_ = vhid_socket_path((index), sp_, sizeof(sp_));     \
		if (err_ != 0) {                                            \
			errno = err_;                                       \
			return -1;                                          \
		}                                                           \
		const char *sock = sp_;                                     \
		(void)sock;                                                 \
		if ((call) != 0)                                            \
			return -1;                                          \
		if (!S_ISSOCK((st)->st_mode)) {                             \
			dbg("stat %s: %s is not a socket", (path), sp_);    \
			errno = ENOENT;                                     \
			return -1;                                          \
		}                                                           \
		VHID_PATCH_STAT((st), (index));                             \
		dbg("stat %s -> char device", (path));                     \
		return 0;                                                   \
	} while (0)

/* After a successful real fstat of fd: patch if fd is a virtual device.
 * A tracked fd whose identity changed (closed behind our back and reused)
 * is forgotten. */
#define VHID_FD_PATCH(fd, st)                                               \
	do {                                                                \
		dev_t dev_;                                                 \
		ino_t ino_;                                                 \
		int idx_ = vtab_find((fd), &dev_, &ino_);                   \
		if (idx_ >= 0) {                                            \
			if (S_ISSOCK((st)->st_mode) &&                      \
			    (st)->st_dev == dev_ && (st)->st_ino == ino_)   \
				VHID_PATCH_STAT((st), idx_);                \
			else                                                \
				vtab_forget((fd));                          \
		}                                                           \
	} while (0)

/* ------------------------------------------------------------------ */
/* open family.                                                         */

static int needs_mode(int flags)
{
	return (flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE;
}

#define GET_MODE(flags, last, mode)                                         \
	do {                                                                \
		if (needs_mode(flags)) {                                    \
			va_list ap_;                                        \
			va_start(ap_, last);                                \
			mode = (mode_t)va_arg(ap_, unsigned int);           \
			va_end(ap_);                                        \
		}                                                           \
	} while (0)

/* A real open returned fd: any table entry for that number is stale. */
static int passed(int fd)
{
	if (fd >= 0 && atomic_load(&vtab_count) != 0) {
		int saved = errno;
		vtab_forget(fd);
		errno = saved;
	}
	return fd;
}

VHID_EXPORT int open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	GET_MODE(flags, flags, mode);
	int idx = vhid_index(path);
	if (idx >= 0)
		return vhid_open(path, idx, flags);
	return passed(CALL_REAL(open, path, flags, mode));
}

VHID_EXPORT int open64(const char *path, int flags, ...)
{
	mode_t mode = 0;
	GET_MODE(flags, flags, mode);
	int idx = vhid_index(path);
	if (idx >= 0)
		return vhid_open(path, idx, flags);
	return passed(CALL_REAL(open64, path, flags, mode));
}

VHID_EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;
	GET_MODE(flags, flags, mode);
	int idx = vhid_index(path);
	if (idx >= 0)
		return vhid_open(path, idx, flags);
	return passed(CALL_REAL(openat, dirfd, path, flags, mode));
}

VHID_EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;
	GET_MODE(flags, flags, mode);
	int idx = vhid_index(path);
	if (idx >= 0)
		return vhid_open(path, idx, flags);
	return passed(CALL_REAL(openat64, dirfd, path, flags, mode));
}

VHID_EXPORT int __open_2(const char *path, int flags)
{
	int idx = vhid_index(path);
	if (idx >= 0)
		return vhid_open(path, idx, flags);
	return passed(CALL_REAL(__open_2, path, flags));
}

VHID_EXPORT int __open64_2(const char *path, int flags)
{
	int idx = vhid_index(path);
	if (idx >= 0)
		return vhid_open(path, idx, flags);
	return passed(CALL_REAL(__open64_2, path, flags));
}

VHID_EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
	int idx = vhid_index(path);
	if (idx >= 0)
		return vhid_open(path, idx, flags);
	return passed(CALL_REAL(__openat_2, dirfd, path, flags));
}

VHID_EXPORT int __openat64_2(int dirfd, const char *path, int flags)
{
	int idx = vhid_index(path);
	if (idx >= 0)
		return vhid_open(path, idx, flags);
	return passed(CALL_REAL(__openat64_2, dirfd, path, flags));
}

VHID_EXPORT int close(int fd)
{
	/* Forget first: once closed, the number may be reused by another
	 * thread's open. */
	if (atomic_load(&vtab_count) != 0) {
		int saved = errno;
		vtab_forget(fd);
		errno = saved;
	}
	return CALL_REAL(close, fd);
}

/* ------------------------------------------------------------------ */
/* flock: exclusive use of a virtual device, as of a hidraw node.       */

/* vhid_lockfd returns the lock file of virtual fd, opening it on first
 * use: the socket's path with ".lock" appended. -1 if fd is not virtual,
 * -2 (errno set) if the lock file cannot be opened. */
static int vhid_lockfd(int fd)
{
	int index = -1, lockfd = -1;
	pthread_mutex_lock(&vtab_mu);
	struct vslot *v = vtab_slot(fd);
	if (v != NULL) {
		index = v->index;
		lockfd = v->lockfd;
	}
	pthread_mutex_unlock(&vtab_mu);
	if (index < 0)
		return -1;
	if (lockfd >= 0)
		return lockfd;
	char path[SUN_PATH_SIZE + 8];
	int err = vhid_socket_path(index, path, SUN_PATH_SIZE);
	if (err != 0) {
		errno = err;
		return -2;
	}
	strcat(path, ".lock");
	int nfd = CALL_REAL(open, path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (nfd < 0)
		return -2;
	pthread_mutex_lock(&vtab_mu);
	v = vtab_slot(fd);
	if (v != NULL && v->lockfd < 0) {
		v->lockfd = nfd;
		lockfd = nfd;
		nfd = -1;
	} else if (v != NULL) {
		lockfd = v->lockfd; /* another thread was first */
	}
	pthread_mutex_unlock(&vtab_mu);
	if (nfd >= 0)
		CALL_REAL(close, nfd);
	if (lockfd < 0) {
		errno = EBADF; /* closed meanwhile */
		return -2;
	}
	return lockfd;
}

VHID_EXPORT int flock(int fd, int op)
{
	if (atomic_load(&vtab_count) == 0)
		return CALL_REAL(flock, fd, op);
	int saved = errno;
	int lockfd = vhid_lockfd(fd);
	if (lockfd == -1) {
		errno = saved;
		return CALL_REAL(flock, fd, op);
	}
	if (lockfd < 0)
		return -1;
	return CALL_REAL(flock, lockfd, op);
}

/* ------------------------------------------------------------------ */
/* read and poll: the read-ahead of virtual devices.                   */

VHID_EXPORT ssize_t read(int fd, void *buf, size_t n)
{
	if (atomic_load(&vtab_count) == 0)
		return CALL_REAL(read, fd, buf, n);
	ssize_t r = vtab_take(fd, buf, n);
	if (r == -1)
		return CALL_REAL(read, fd, buf, n);
	if (r >= 0)
		return r;
	return vhid_read_virtual(fd, buf, n);
}

static int ppoll_now(struct pollfd *fds, nfds_t nfds, const sigset_t *sigmask);
static int poll_now(struct pollfd *fds, nfds_t nfds, const sigset_t *sigmask);

/* glibc declares the pollfd array of poll and ppoll write-only, so GCC
 * takes the caller's initialised array for uninitialised when passed on. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
VHID_EXPORT int ppoll(struct pollfd *fds, nfds_t nfds,
    const struct timespec *ts, const sigset_t *sigmask)
{
	nfds_t held = vhid_held_count(fds, nfds);
	if (held == 0)
		return CALL_REAL(ppoll, fds, nfds, ts, sigmask);
	return vhid_poll_held(fds, nfds, held, ppoll_now, sigmask);
}

VHID_EXPORT int poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
	nfds_t held = vhid_held_count(fds, nfds);
	if (held == 0)
		return CALL_REAL(poll, fds, nfds, timeout);
	return vhid_poll_held(fds, nfds, held, poll_now, NULL);
}
static int ppoll_now(struct pollfd *fds, nfds_t nfds, const sigset_t *sigmask)
{
	static const struct timespec zero;
	return CALL_REAL(ppoll, fds, nfds, &zero, sigmask);
}

static int poll_now(struct pollfd *fds, nfds_t nfds, const sigset_t *sigmask)
{
	(void)sigmask;
	return CALL_REAL(poll, fds, nfds, 0);
}
#pragma GCC diagnostic pop

/* ------------------------------------------------------------------ */
/* stat family.                                                         */

VHID_EXPORT int fstat(int fd, struct stat *st)
{
	int r = CALL_REAL(fstat, fd, st);
	if (r == 0)
		VHID_FD_PATCH(fd, st);
	return r;
}

VHID_EXPORT int fstat64(int fd, struct stat64 *st)
{
	int r = CALL_REAL(fstat64, fd, st);
	if (r == 0)
		VHID_FD_PATCH(fd, st);
	return r;
}

VHID_EXPORT int __fxstat(int ver, int fd, struct stat *st)
{
	int r = CALL_REAL(__fxstat, ver, fd, st);
	if (r == 0)
		VHID_FD_PATCH(fd, st);
	return r;
}

VHID_EXPORT int __fxstat64(int ver, int fd, struct stat64 *st)
{
	int r = CALL_REAL(__fxstat64, ver, fd, st);
	if (r == 0)
		VHID_FD_PATCH(fd, st);
	return r;
}

VHID_EXPORT int stat(const char *path, struct stat *st)
{
	int idx = vhid_index(path);
	if (idx >= 0)
		VHID_PATH_STAT(path, idx, st, CALL_REAL(stat, sock, st));
	return CALL_REAL(stat, path, st);
}

VHID_EXPORT int stat64(const char *path, struct stat64 *st)
{
	int idx = vhid_index(path);
	if (idx >= 0)
		VHID_PATH_STAT(path, idx, st, CALL_REAL(stat64, sock, st));
	return CALL_REAL(stat64, path, st);
}

VHID_EXPORT int lstat(const char *path, struct stat *st)
{
	int idx = vhid_index(path);
	if (idx >= 0)
		VHID_PATH_STAT(path, idx, st, CALL_REAL(stat, sock, st));
	return CALL_REAL(lstat, path, st);
}

VHID_EXPORT int lstat64(const char *path, struct stat64 *st)
{
	int idx = vhid_index(path);
	if (idx >= 0)
		VHID_PATH_STAT(path, idx, st, CALL_REAL(stat64, sock, st));
	return CALL_REAL(lstat64, path, st);
}

VHID_EXPORT int __xstat(int ver, const char *path, struct stat *st)
{
	int idx = vhid_index(path);
	if (idx >= 0)
		VHID_PATH_STAT(path, idx, st, CALL_REAL(__xstat, ver, sock, st));
	return CALL_REAL(__xstat, ver, path, st);
}

VHID_EXPORT int __xstat64(int ver, const char *path, struct stat64 *st)
{
	int idx = vhid_index(path);
	if (idx >= 0)
		VHID_PATH_STAT(path, idx, st,
			       CALL_REAL(__xstat64, ver, sock, st));
	return CALL_REAL(__xstat64, ver, path, st);
}

VHID_EXPORT int __lxstat(int ver, const char *path, struct stat *st)
{
	int idx = vhid_index(path);
	if (idx >= 0)
		VHID_PATH_STAT(path, idx, st, CALL_REAL(__xstat, ver, sock, st));
	return CALL_REAL(__lxstat, ver, path, st);
}

VHID_EXPORT int __lxstat64(int ver, const char *path, struct stat64 *st)
{
	int idx = vhid_index(path);
	if (idx >= 0)
		VHID_PATH_STAT(path, idx, st,
			       CALL_REAL(__xstat64, ver, sock, st));
	return CALL_REAL(__lxstat64, ver, path, st);
}

static int empty_path_fd(const char *path, int flags)
{
	return path != NULL && path[0] == '\0' && (flags & AT_EMPTY_PATH);
}

VHID_EXPORT int fstatat(int dirfd, const char *path, struct stat *st,
			int flags)
{
	int idx = vhid_index(path);
	if (idx >= 0)
		VHID_PATH_STAT(path, idx, st, CALL_REAL(stat, sock, st));
	int r = CALL_REAL(fstatat, dirfd, path, st, flags);
	if (r == 0 && empty_path_fd(path, flags))
		VHID_FD_PATCH(dirfd, st);
	return r;
}

VHID_EXPORT int fstatat64(int dirfd, const char *path, struct stat64 *st,
			  int flags)
{
	int idx = vhid_index(path);
	if (idx >= 0)
		VHID_PATH_STAT(path, idx, st, CALL_REAL(stat64, sock, st));
	int r = CALL_REAL(fstatat64, dirfd, path, st, flags);
	if (r == 0 && empty_path_fd(path, flags))
		VHID_FD_PATCH(dirfd, st);
	return r;
}

VHID_EXPORT int __fxstatat(int ver, int dirfd, const char *path,
			   struct stat *st, int flags)
{
	int idx = vhid_index(path);
	if (idx >= 0)
		VHID_PATH_STAT(path, idx, st,
			       CALL_REAL(__xstat, ver, sock, st));
	int r = CALL_REAL(__fxstatat, ver, dirfd, path, st, flags);
	if (r == 0 && empty_path_fd(path, flags))
		VHID_FD_PATCH(dirfd, st);
	return r;
}

VHID_EXPORT int __fxstatat64(int ver, int dirfd, const char *path,
			     struct stat64 *st, int flags)
{
	int idx = vhid_index(path);
	if (idx >= 0)
		VHID_PATH_STAT(path, idx, st,
			       CALL_REAL(__xstat64, ver, sock, st));
	int r = CALL_REAL(__fxstatat64, ver, dirfd, path, st, flags);
	if (r == 0 && empty_path_fd(path, flags))
		VHID_FD_PATCH(dirfd, st);
	return r;
}

#ifdef STATX_TYPE
static void vhid_patch_statx(struct statx *sx, int index)
{
	sx->stx_mode = (__typeof__(sx->stx_mode))(S_IFCHR | (sx->stx_mode & 07777));
	sx->stx_rdev_major = VHID_MAJOR;
	sx->stx_rdev_minor = (__typeof__(sx->stx_rdev_minor))index;
	sx->stx_size = 0;
	sx->stx_blocks = 0;
}

/* statx is what coreutils (ls, stat) use. */
VHID_EXPORT int statx(int dirfd, const char *path, int flags,
		      unsigned int mask, struct statx *sx)
{
	int idx = vhid_index(path);
	if (idx >= 0) {
		char sp[sizeof(((struct sockaddr_un *)0)->sun_path)];
		int err = vhid_socket_path(idx, sp, sizeof(sp));
		if (err != 0) {
			errno = err;
			return -1;
		}
		if (CALL_REAL(statx, AT_FDCWD, sp, flags & ~AT_SYMLINK_NOFOLLOW,
			      mask | STATX_TYPE | STATX_MODE, sx) != 0)
			return -1;
		if (!S_ISSOCK(sx->stx_mode)) {
			errno = ENOENT;
			return -1;
		}
		vhid_patch_statx(sx, idx);
		dbg("statx %s -> char device", path);
		return 0;
	}
	int r = CALL_REAL(statx, dirfd, path, flags, mask, sx);
	if (r == 0 && empty_path_fd(path, flags)) {
		dev_t dev;
		ino_t ino;
		idx = vtab_find(dirfd, &dev, &ino);
		if (idx >= 0) {
			if (S_ISSOCK(sx->stx_mode) && sx->stx_ino == ino &&
			    makedev(sx->stx_dev_major, sx->stx_dev_minor) == dev)
				vhid_patch_statx(sx, idx);
			else
				vtab_forget(dirfd);
		}
	}
	return r;
}
#endif

/* ------------------------------------------------------------------ */
/* xattr / access: a configured virtual path exists, without xattrs   */
/* (ls -l asks libselinux, which calls lgetxattr).                    */

/* Resolves the socket of a virtual path and checks it is a socket.
 * Returns 0, or -1 with errno set. */
static int vhid_existing_socket(int index, char *sp, size_t splen)
{
	int err = vhid_socket_path(index, sp, splen);
	if (err != 0) {
		errno = err;
		return -1;
	}
	struct stat st;
	if (CALL_REAL(stat, sp, &st) != 0)
		return -1;
	if (!S_ISSOCK(st.st_mode)) {
		errno = ENOENT;
		return -1;
	}
	return 0;
}


static ssize_t vhid_getxattr(int index)
{
	char sp[SUN_PATH_SIZE];
	if (vhid_existing_socket(index, sp, sizeof(sp)) != 0)
		return -1;
	errno = ENODATA;
	return -1;
}

static ssize_t vhid_listxattr(int index)
{
	char sp[SUN_PATH_SIZE];
	if (vhid_existing_socket(index, sp, sizeof(sp)) != 0)
		return -1;
	return 0;
}

VHID_EXPORT ssize_t getxattr(const char *path, const char *name, void *value,
			     size_t size)
{
	int idx = vhid_index(path);
	if (idx >= 0)
		return vhid_getxattr(idx);
	return CALL_REAL(getxattr, path, name, value, size);
}

VHID_EXPORT ssize_t lgetxattr(const char *path, const char *name,
			      void *value, size_t size)
{
	int idx = vhid_index(path);
	if (idx >= 0)
		return vhid_getxattr(idx);
	return CALL_REAL(lgetxattr, path, name, value, size);
}

VHID_EXPORT ssize_t listxattr(const char *path, char *list, size_t size)
{
	int idx = vhid_index(path);
	if (idx >= 0)
		return vhid_listxattr(idx);
	return CALL_REAL(listxattr, path, list, size);
}

VHID_EXPORT ssize_t llistxattr(const char *path, char *list, size_t size)
{
	int idx = vhid_index(path);
	if (idx >= 0)
		return vhid_listxattr(idx);
	return CALL_REAL(llistxattr, path, list, size);
}

/* access() of a virtual path checks the socket file's permissions. */
VHID_EXPORT int access(const char *path, int mode)
{
	int idx = vhid_index(path);
	if (idx >= 0) {
		char sp[SUN_PATH_SIZE];
		if (vhid_existing_socket(idx, sp, sizeof(sp)) != 0)
			return -1;
		return CALL_REAL(access, sp, mode);
	}
	return CALL_REAL(access, path, mode);
}

VHID_EXPORT int faccessat(int dirfd, const char *path, int mode, int flags)
{
	int idx = vhid_index(path);
	if (idx >= 0) {
		char sp[SUN_PATH_SIZE];
		if (vhid_existing_socket(idx, sp, sizeof(sp)) != 0)
			return -1;
		return CALL_REAL(faccessat, AT_FDCWD, sp, mode,
				 flags & ~AT_SYMLINK_NOFOLLOW);
	}
	return CALL_REAL(faccessat, dirfd, path, mode, flags);
}
