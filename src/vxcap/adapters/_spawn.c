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
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
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

static PyMethodDef methods[] = {
    {"spawn", spawn, METH_VARARGS, "spawn(argv, stdin_fd, stdout_fd, stderr_fd, pdeathsig) -> pid"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_spawn", NULL, -1, methods};

PyMODINIT_FUNC PyInit__spawn(void) { return PyModule_Create(&module); }
