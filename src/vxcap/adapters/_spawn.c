/* Starting a capture program with the kernel's parent-death signal set, without `setpriv`.
 *
 * `setpriv --pdeathsig INT --` in front of every tcpdump cost an exec and about 2 ms of CPU each
 * (libcap-ng's start-up): half a second for a 256-node lab's captures. Python's subprocess cannot
 * call prctl(2) in the child short of preexec_fn, which forks the whole multi-threaded interpreter
 * instead of vfork-ing it. Here the child is vfork-ed and, before exec, only makes a session of its
 * own (start_new_session), sets PR_SET_PDEATHSIG, and puts stdin/stdout/stderr in place; every
 * other descriptor is marked close-on-exec (close_fds). All of it is async-signal-safe.
 *
 * As with setpriv, the signal follows the *thread* that started the child: call it from a thread
 * that lives as long as the child. The program is exec-ed by its full path (execv: no PATH search
 * in the child). An exec failure comes back as OSError with the child's errno.
 *
 * watchdog(): the time bound of a batch of captures, in place of a `timeout` exec in front of each
 * (about 1 ms of CPU apiece, 256 of them for a 256-node lab). One child, forked (not vfork-ed: it
 * lives on beside vxcap, and exec-s nothing), holds pidfds of the captures' processes, sleeps until
 * the deadline and sends each still running SIGINT, as `timeout -s INT` did, so tcpdump still writes
 * its closing counts (an alarm() in each child would end it on SIGALRM, without them). Pidfds, not
 * pids: a capture stopped and reaped long before cannot have its pid recycled under the watchdog.
 * Before signalling it writes to report_fd a bitmap of the captures it is about to end, so the run
 * can say which ended at their time limit. It dies with the thread that forked it (PR_SET_PDEATHSIG
 * SIGKILL; the captures have their own parent-death SIGINT) and is ended by vxcap when the captures
 * are stopped. It is forked from a multi-threaded interpreter: the child makes system calls only
 * (async-signal-safe), touches no lock, no allocator, no Python object, and keeps every signal
 * blocked (a terminal's Ctrl-C is vxcap's to handle, and it leaves the terminal's group anyway).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

static void child(char *const argv[], int in_fd, int out_fd, int err_fd, int sig, pid_t parent, int report_fd,
                  const sigset_t *mask) {
    int err;
    /* Signals are blocked from before the vfork: a handler of the interpreter's must never run here.
     * Its handlers go back to the default (the child's table is its own: vfork shares memory, not
     * handlers), then the thread's mask is restored for the program, as _posixsubprocess does. */
    for (int s = 1; s < NSIG; s++) {
        struct sigaction action;
        if (sigaction(s, NULL, &action) == 0 && action.sa_handler != SIG_DFL && action.sa_handler != SIG_IGN) {
            action.sa_handler = SIG_DFL;
            action.sa_flags = 0;
            sigemptyset(&action.sa_mask);
            sigaction(s, &action, NULL);
        }
    }
    if (sigprocmask(SIG_SETMASK, mask, NULL) < 0) goto failed;
    if (setsid() < 0) goto failed;
    if (prctl(PR_SET_PDEATHSIG, sig) < 0) goto failed;
    if (getppid() != parent) { errno = ESRCH; goto failed; }  /* the parent died before the signal was set */
    if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0) goto failed;
    /* close_fds: every descriptor past stderr is closed at exec (report_fd is close-on-exec already) */
    if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
        long most = sysconf(_SC_OPEN_MAX);
        for (int fd = 3; fd < most; fd++) {
            if (fd != report_fd) fcntl(fd, F_SETFD, FD_CLOEXEC);
        }
    }
    execv(argv[0], argv);
failed:
    err = errno;
    (void)!write(report_fd, &err, sizeof err);
    _exit(127);
}

/* spawn(argv: list[bytes], stdin_fd, stdout_fd, stderr_fd, pdeathsig) -> pid */
static PyObject *spawn(PyObject *self, PyObject *args) {
    PyObject *seq;
    int in_fd, out_fd, err_fd, sig;
    if (!PyArg_ParseTuple(args, "O!iiii", &PyList_Type, &seq, &in_fd, &out_fd, &err_fd, &sig)) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(seq);
    if (n < 1) {
        PyErr_SetString(PyExc_ValueError, "spawn: argv is empty");
        return NULL;
    }
    char **argv = PyMem_Calloc((size_t)n + 1, sizeof(char *));
    if (argv == NULL) return PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(seq, i);
        if (!PyBytes_Check(item)) {
            PyMem_Free(argv);
            PyErr_SetString(PyExc_TypeError, "spawn: argv items must be bytes");
            return NULL;
        }
        argv[i] = PyBytes_AS_STRING(item);
    }
    int report[2];
    if (pipe2(report, O_CLOEXEC) < 0) {
        PyMem_Free(argv);
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    pid_t parent = getpid();
    pid_t pid = vfork();
    if (pid == 0) child(argv, in_fd, out_fd, err_fd, sig, parent, report[1], &old);
    int saved = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    PyMem_Free(argv);
    close(report[1]);
    if (pid < 0) {
        close(report[0]);
        errno = saved;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    int err = 0;
    ssize_t got;
    Py_BEGIN_ALLOW_THREADS
    do got = read(report[0], &err, sizeof err); while (got < 0 && errno == EINTR);
    Py_END_ALLOW_THREADS
    close(report[0]);
    if (got == (ssize_t)sizeof err) {  /* exec failed: the child has exited; reap it */
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        errno = err;
        return PyErr_SetFromErrnoWithFilename(PyExc_OSError, PyBytes_AS_STRING(PyList_GET_ITEM(seq, 0)));
    }
    return PyLong_FromLong((long)pid);
}

#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

/* The watchdog child. `keep` is sorted and holds `pidfds` and `report_fd`: every other descriptor
 * is closed, stdin, stdout and stderr included, so a pipe's write end that vxcap or its other
 * threads hold at fork time is not kept open here for the captures' whole duration (its reader,
 * `vxcap run --json | jq` for one, would wait that long for its end). */
static void watch(const int *pidfds, size_t n, const int *keep, size_t n_keep, int report_fd,
                  const struct timespec *deadline, pid_t parent, uint8_t *bitmap, size_t bitmap_bytes) {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent) _exit(1);
    setsid();
    unsigned int from = 0;
    for (size_t i = 0; i <= n_keep; i++) {
        unsigned int upto = i < n_keep ? (unsigned int)keep[i] : ~0U;
        if (upto > from && syscall(SYS_close_range, from, upto - 1, 0) < 0) {
            long most = sysconf(_SC_OPEN_MAX);
            for (long fd = from; fd < (long)upto && fd < most; fd++) close((int)fd);
        }
        if (i < n_keep && (unsigned int)keep[i] + 1 > from) from = (unsigned int)keep[i] + 1;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, deadline, NULL) == EINTR) {}
    for (size_t i = 0; i < n; i++) {
        if (pidfds[i] < 0) continue;
        struct pollfd ended = {.fd = pidfds[i], .events = POLLIN};
        if (poll(&ended, 1, 0) == 0) bitmap[i / 8] |= (uint8_t)(1U << (i % 8));  /* still running */
    }
    for (size_t done = 0; done < bitmap_bytes;) {
        ssize_t wrote = write(report_fd, bitmap + done, bitmap_bytes - done);
        if (wrote < 0 && errno == EINTR) continue;
        if (wrote <= 0) break;
        done += (size_t)wrote;
    }
    for (size_t i = 0; i < n; i++) {
        if (bitmap[i / 8] & (1U << (i % 8))) syscall(SYS_pidfd_send_signal, pidfds[i], SIGINT, NULL, 0);
    }
    _exit(0);
}

static int compare_ints(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* watchdog(pidfds: list[int], deadline: float (CLOCK_MONOTONIC s, as time.monotonic()), report_fd) -> pid
 * A pidfd of -1 is a capture not to be signalled (its place in the bitmap stays 0). */
static PyObject *watchdog(PyObject *self, PyObject *args) {
    PyObject *seq;
    double at;
    int report_fd;
    if (!PyArg_ParseTuple(args, "O!di", &PyList_Type, &seq, &at, &report_fd)) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(seq);
    if (n > (1 << 20)) {
        PyErr_SetString(PyExc_ValueError, "watchdog: too many captures");
        return NULL;
    }
    size_t bitmap_bytes = ((size_t)n + 7) / 8;
    /* Everything the child uses is allocated here, before the fork. */
    int *pidfds = PyMem_Calloc((size_t)n + 1, sizeof(int));
    int *keep = PyMem_Calloc((size_t)n + 1, sizeof(int));
    uint8_t *bitmap = PyMem_Calloc(bitmap_bytes + 1, 1);
    if (pidfds == NULL || keep == NULL || bitmap == NULL) {
        PyMem_Free(pidfds); PyMem_Free(keep); PyMem_Free(bitmap);
        return PyErr_NoMemory();
    }
    size_t n_keep = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        int fd = (int)PyLong_AsLong(PyList_GET_ITEM(seq, i));
        if (fd == -1 && PyErr_Occurred()) {
            PyMem_Free(pidfds); PyMem_Free(keep); PyMem_Free(bitmap);
            return NULL;
        }
        pidfds[i] = fd;
        if (fd >= 0) keep[n_keep++] = fd;
    }
    keep[n_keep++] = report_fd;
    qsort(keep, n_keep, sizeof(int), compare_ints);
    struct timespec deadline = {.tv_sec = (time_t)at, .tv_nsec = (long)((at - (double)(time_t)at) * 1e9)};
    if (deadline.tv_nsec >= 1000000000L) deadline.tv_nsec = 999999999L;
    if (deadline.tv_nsec < 0) deadline.tv_nsec = 0;

    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    pid_t parent = getpid();
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    pid_t pid = _Fork();  /* no pthread_atfork handlers: the child runs none of the libraries' code */
#else
    pid_t pid = fork();
#endif
    if (pid == 0) watch(pidfds, (size_t)n, keep, n_keep, report_fd, &deadline, parent, bitmap, bitmap_bytes);
    int saved = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    PyMem_Free(pidfds); PyMem_Free(keep); PyMem_Free(bitmap);
    if (pid < 0) {
        errno = saved;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return PyLong_FromLong((long)pid);
}

static PyMethodDef methods[] = {
    {"spawn", spawn, METH_VARARGS, "spawn(argv, stdin_fd, stdout_fd, stderr_fd, pdeathsig) -> pid"},
    {"watchdog", watchdog, METH_VARARGS, "watchdog(pidfds, deadline, report_fd) -> pid"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_spawn", NULL, -1, methods};

PyMODINIT_FUNC PyInit__spawn(void) { return PyModule_Create(&module); }
