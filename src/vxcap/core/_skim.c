/* The fast decoder's skip path, compiled: walks classic-pcap Ethernet records and steps over
 * the frames `FastDecoder` would only count (frames of flows nobody judges, and frames with no
 * IPv4), stopping at the first record the Python loop must read itself.
 *
 * It decides nothing the Python loop does not: each condition below is one of the loop's
 * skip conditions in vxcap/core/fastdecode.py (`_pcap_records`), at the same offsets, and
 * the tests run both on the same bytes and compare the results frame by frame. Whatever is
 * not certainly skipped (IP options, tags, judged addresses, a port of ours, a record that
 * does not fit) is handed back. Without a compiler the Python loop does it all, the same way.
 *
 * skim(buf, off, n, big_endian, judged, ports) -> (off, frames skipped, of them unjudged IPv4)
 *   buf: a bytes-like object; judged, ports: bytes of sorted big-endian uint32 / uint16 values.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t be32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint16_t be16(const unsigned char *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t le32(const unsigned char *p) {
    return ((uint32_t)p[3] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | p[0];
}

static int in_u32(const unsigned char *set, Py_ssize_t count, uint32_t value) {
    Py_ssize_t lo = 0, hi = count;
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        uint32_t at = be32(set + 4 * mid);
        if (at == value) return 1;
        if (at < value) lo = mid + 1; else hi = mid;
    }
    return 0;
}

static int in_u16(const unsigned char *set, Py_ssize_t count, uint16_t value) {
    for (Py_ssize_t i = 0; i < count; i++)
        if (be16(set + 2 * i) == value) return 1;
    return 0;
}

static PyObject *skim(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "skim(buf, off, n, big_endian, judged, ports)");
        return NULL;
    }
    Py_buffer view, judged, ports;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) return NULL;
    if (PyObject_GetBuffer(args[4], &judged, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    if (PyObject_GetBuffer(args[5], &ports, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&view);
        PyBuffer_Release(&judged);
        return NULL;
    }
    Py_ssize_t off = PyLong_AsSsize_t(args[1]);
    Py_ssize_t n = PyLong_AsSsize_t(args[2]);
    int big = PyObject_IsTrue(args[3]);
    PyObject *result = NULL;
    if ((off == -1 || n == -1 || big == -1) && PyErr_Occurred()) goto done;
    if (n > view.len) n = view.len;

    const unsigned char *buf = view.buf;
    const unsigned char *jset = judged.buf, *pset = ports.buf;
    Py_ssize_t jcount = judged.len / 4, pcount = ports.len / 2;
    Py_ssize_t frames = 0, unjudged = 0;

    while (off >= 0 && off + 16 <= n) {
        const unsigned char *h = buf + off;
        uint32_t caplen = big ? be32(h + 8) : le32(h + 8);
        if ((Py_ssize_t)caplen > n - off - 16) break;  /* not all here, or damaged: the loop decides */
        if (caplen < 34) break;
        const unsigned char *p = h + 16;
        uint16_t ethertype = be16(p + 12);
        if (ethertype != 0x0800) {
            if (ethertype == 0x8100 || ethertype == 0x88A8 || ethertype == 0x86DD) break;
            frames++;  /* ARP, LLDP, ...: no IPv4, nothing counted */
            off += 16 + caplen;
            continue;
        }
        if (p[14] != 0x45) break;
        uint16_t total_len = be16(p + 16), flags_frag = be16(p + 20);
        unsigned char proto = p[23];
        uint32_t src = be32(p + 26), dst = be32(p + 30);
        if (proto != 17 || (flags_frag & 0x1FFF)) {
            if (in_u32(jset, jcount, src) || in_u32(jset, jcount, dst)) break;
        } else if (caplen < 84 || (total_len >= 20 && total_len < 28)) {
            if (in_u32(jset, jcount, src) || in_u32(jset, jcount, dst)) break;
            if (caplen >= 42 && in_u16(pset, pcount, be16(p + 36))) break;
        } else {
            uint16_t dport = be16(p + 36);
            if (!(p[42] & 0x08)) {
                /* Not VXLAN: plain, keyed by the outer pair with its port. */
                if (in_u32(jset, jcount, src) || in_u32(jset, jcount, dst) || in_u16(pset, pcount, dport)) break;
            } else if (be16(p + 62) == 0x0800 && (p[64] >> 4) == 4) {
                /* VXLAN with IPv4 inside: keyed by the inner pair, whatever else it holds. */
                if (in_u32(jset, jcount, be32(p + 76)) || in_u32(jset, jcount, be32(p + 80))) break;
            } else {
                break;
            }
        }
        frames++;
        unjudged++;
        off += 16 + caplen;
    }
    result = Py_BuildValue("nnn", off, frames, unjudged);
done:
    PyBuffer_Release(&view);
    PyBuffer_Release(&judged);
    PyBuffer_Release(&ports);
    return result;
}

static PyMethodDef methods[] = {
    {"skim", (PyCFunction)(void (*)(void))skim, METH_FASTCALL, "Step over the records the fast decoder only counts."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_skim", NULL, -1, methods};

PyMODINIT_FUNC PyInit__skim(void) { return PyModule_Create(&module); }
