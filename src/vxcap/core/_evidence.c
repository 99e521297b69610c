/* The evidence writer's per-frame loop (`vxcap.adapters.evidence.write_evidence`), compiled, for
 * one classic pcap capture: each record becomes a pcapng enhanced packet block, and a frame is
 * filed by `ethernet_key(frame)[0]` (innermost source << 32 | destination) into the flows asked for.
 *
 * Per frame the Python loop read a record, built a block and classified the frame: about 2.5 us,
 * most of `vxcap analyze` on a run-sized capture. Here the blocks are memcpy'd into one buffer per
 * output file, and the frame's key is read at `ethernet_key`'s offsets for the shapes it reads
 * without `classify`; every other frame (tags, IP options, short frames, TCP SYNs, ICMP errors,
 * IPv6, another link type) that holds a wanted key's bytes is handed to the Python function given
 * (`keyfn`), so the filing is the Python writer's by construction there, and held to it frame by frame by the tests
 * (tests/adapters/test_evidence_compiled.py) everywhere else. A key change in
 * `fastdecode.ethernet_key` must be made here too; those tests say where.
 *
 * blocks(buf, off, n, big_endian, nano, linktype, pairs, keyfn, always_keyfn[, python_ports])
 *   -> (off, frames, all_nodes_bytes, [(slot, bytes, frames), ...])
 *   pairs: sorted native uint64 keys (the slot of a key is its position); keyfn(frame) -> facts | None.
 *   python_ports: native uint16 UDP destination ports whose frames keyfn keys (the reading's Geneve
 *   and WireGuard ports).
 *   It stops at a record not all in buf[off:n], or longer than 65535 bytes (scapy's readers cut
 *   those, and so does the Python path): the caller reads that one.
 */
#define PY_SSIZE_T_CLEAN
#define _GNU_SOURCE /* memmem */
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SCAPY_MTU 65535

static inline uint32_t be32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint16_t be16(const unsigned char *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t le32(const unsigned char *p) {
    return ((uint32_t)p[3] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | p[0];
}
static inline uint64_t be64(const unsigned char *p) { return ((uint64_t)be32(p) << 32) | be32(p + 4); }
static inline void put_le32(unsigned char *p, uint32_t v) {
    p[0] = v & 0xFF; p[1] = (v >> 8) & 0xFF; p[2] = (v >> 16) & 0xFF; p[3] = (v >> 24) & 0xFF;
}

typedef struct { unsigned char *p; size_t len, cap; Py_ssize_t frames; } Out;

static int reserve(Out *o, size_t more) {
    if (o->len + more <= o->cap) return 0;
    size_t cap = o->cap ? o->cap : 1 << 16;
    while (cap < o->len + more) cap *= 2;
    unsigned char *p = realloc(o->p, cap);
    if (p == NULL) return -1;  /* the caller says so, holding the GIL */
    o->p = p;
    o->cap = cap;
    return 0;
}

/* One enhanced packet block, as `enhanced_packet(0, timestamp, data, wire_len)` builds it. */
static int put_block(Out *o, uint64_t ticks, const unsigned char *data, uint32_t caplen, uint32_t wire_len) {
    uint32_t pad = (uint32_t)(-(int64_t)caplen & 3), total = 32 + caplen + pad;
    if (reserve(o, total) < 0) return -1;
    unsigned char *q = o->p + o->len;
    put_le32(q, 6);
    put_le32(q + 4, total);
    put_le32(q + 8, 0);  /* interface 0: one capture, one link type */
    put_le32(q + 12, (uint32_t)(ticks >> 32));
    put_le32(q + 16, (uint32_t)ticks);
    put_le32(q + 20, caplen);
    put_le32(q + 24, wire_len < caplen ? caplen : wire_len);
    memcpy(q + 28, data, caplen);
    memset(q + 28 + caplen, 0, pad);
    put_le32(q + 28 + caplen + pad, total);
    o->len += total;
    o->frames++;
    return 0;
}

/* ethernet_key(frame)[0] where ethernet_key reads it without classify: 1 and *key set; 0 when the
 * frame has no key (ARP, LLDP, ...); 2 when only the Python function can say. */
static int fast_key(const unsigned char *p, uint32_t caplen, uint64_t *key, const uint16_t *ports,
                    Py_ssize_t nports) {
    if (caplen < 34) return 2;
    uint16_t ethertype = be16(p + 12);
    if (ethertype != 0x0800) return (ethertype == 0x8100 || ethertype == 0x88A8 || ethertype == 0x86DD) ? 2 : 0;
    if (p[14] != 0x45) return 2;
    uint16_t total_len = be16(p + 16), ff = be16(p + 20);
    unsigned char proto = p[23];
    /* Only the transports ethernet_key reads today; another (IP-in-IP, ESP, ...) is the Python
     * function's to key, should it learn to look inside. */
    if (proto != 1 && proto != 6 && proto != 17) return 2;
    *key = be64(p + 26);
    if (ff & 0x1FFF) return 1;
    if (proto != 17) {
        if (proto == 1 && caplen >= 42 && (total_len >= 28 || total_len < 20)) {
            if (p[34] == 3) return 2;
        } else if (proto == 6 && caplen >= 48 && (p[47] & 2)) {
            return 2;
        }
        return 1;
    }
    if (caplen < 84 || (total_len >= 20 && total_len < 28)) return 2;
    /* A port the run's reading gives another format (Geneve, WireGuard): ethernet_key reads those
     * through classify, so their frames are the Python function's to key. */
    uint16_t dport = be16(p + 36);
    for (Py_ssize_t i = 0; i < nports; i++)
        if (ports[i] == dport) return 2;
    if (!(p[42] & 0x08)) return 1;
    uint16_t inner_type = be16(p + 62), inner_ff = be16(p + 70);
    unsigned char inner_vihl = p[64], inner_proto = p[73];
    uint16_t inner_len = be16(p + 66);
    if (inner_type != 0x0800 || inner_vihl >> 4 != 4) return 2;
    if ((inner_proto == 6 || inner_proto == 1) &&
        (inner_vihl != 0x45 || (inner_ff & 0x1FFF) || (inner_proto == 6 && caplen >= 98 && (p[97] & 2))))
        return 2;
    if (inner_proto == 1 && caplen >= 92 && (inner_len >= 28 || inner_len < 20) && p[84] == 3) return 2;
    *key = be64(p + 76);
    return 1;
}

/* The same through the Python function: 1 and *key, or 0; -1 on error. */
static int slow_key(PyObject *keyfn, const unsigned char *p, uint32_t caplen, uint64_t *key) {
    PyObject *frame = PyBytes_FromStringAndSize((const char *)p, caplen);
    if (frame == NULL) return -1;
    PyObject *facts = PyObject_CallOneArg(keyfn, frame);
    Py_DECREF(frame);
    if (facts == NULL) return -1;
    int found = 0;
    if (facts != Py_None && PyTuple_Check(facts) && PyTuple_GET_SIZE(facts) > 0) {
        PyObject *first = PyTuple_GET_ITEM(facts, 0);
        if (PyLong_Check(first) && !PyBool_Check(first)) {
            unsigned long long value = PyLong_AsUnsignedLongLong(first);
            if (value == (unsigned long long)-1 && PyErr_Occurred()) {
                PyErr_Clear();  /* out of a key's range: no flow's key */
            } else {
                *key = value;
                found = 1;
            }
        }
    }
    Py_DECREF(facts);
    return found;
}

/* Whether any wanted key's 8 bytes (big-endian: an IPv4 header's source then destination) are in
 * the frame. ethernet_key and classify read a frame's key as those 8 bytes of one of its IPv4
 * headers, so a frame without them cannot be filed and needs no call of the Python function. */
static int holds_any(const unsigned char *p, uint32_t caplen, const unsigned char *needles, Py_ssize_t count) {
    for (Py_ssize_t i = 0; i < count; i++)
        if (memmem(p, caplen, needles + 8 * i, 8) != NULL) return 1;
    return 0;
}

static Py_ssize_t slot_of(const uint64_t *pairs, Py_ssize_t count, uint64_t key) {
    Py_ssize_t lo = 0, hi = count;
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (pairs[mid] == key) return mid;
        if (pairs[mid] < key) lo = mid + 1; else hi = mid;
    }
    return -1;
}

/* round(timestamp * 10**6) kept to 64 bits, as enhanced_packet does (a classic pcap's times fit). */
static uint64_t ticks_of(uint32_t sec, uint32_t frac, int nano) {
    double timestamp = (double)sec + (double)frac * (nano ? 1e-9 : 1e-6);
    double ticks = nearbyint(timestamp * 1e6);  /* half to even, as Python's round */
    if (!(ticks > 0)) return 0;
    if (ticks >= 18446744073709551616.0) return UINT64_MAX;
    return (uint64_t)ticks;
}

static PyObject *blocks(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 9 && nargs != 10) {
        PyErr_SetString(PyExc_TypeError, "blocks takes 9 or 10 arguments");
        return NULL;
    }
    Py_buffer view, pairs_view, ports_view = {0};
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) return NULL;
    if (PyObject_GetBuffer(args[6], &pairs_view, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    if (nargs == 10 && PyObject_GetBuffer(args[9], &ports_view, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&view);
        PyBuffer_Release(&pairs_view);
        return NULL;
    }
    const uint16_t *ports = ports_view.buf;
    Py_ssize_t nports = ports_view.obj != NULL ? ports_view.len / 2 : 0;
    PyObject *result = NULL;
    Py_ssize_t off = PyLong_AsSsize_t(args[1]);
    Py_ssize_t n = PyLong_AsSsize_t(args[2]);
    int big = PyObject_IsTrue(args[3]), nano = PyObject_IsTrue(args[4]);
    long linktype = PyLong_AsLong(args[5]);
    PyObject *keyfn = args[7];
    int always_keyfn = PyObject_IsTrue(args[8]);
    Py_ssize_t npairs = pairs_view.len / 8;
    const uint64_t *pairs = pairs_view.buf;
    Out all = {0};
    Out *outs = npairs ? calloc((size_t)npairs, sizeof(Out)) : NULL;
    unsigned char *needles = npairs ? malloc((size_t)npairs * 8) : NULL;
    if (npairs && (outs == NULL || needles == NULL)) { PyErr_NoMemory(); goto done; }
    for (Py_ssize_t i = 0; i < npairs; i++)
        for (int b = 0; b < 8; b++) needles[8 * i + b] = (unsigned char)(pairs[i] >> (56 - 8 * b));
    if (PyErr_Occurred() || big < 0 || nano < 0 || always_keyfn < 0) goto done;
    if (n > view.len) n = view.len;
    const unsigned char *buf = view.buf;
    Py_ssize_t frames = 0;
    int failed = 0;  /* 1: out of memory, 2: the Python function raised */
    /* The loop touches no Python object but through keyfn: the GIL is let go meanwhile, so the
     * pipeline's other thread (the decode) runs beside it. */
    PyThreadState *released = PyEval_SaveThread();
    while (off >= 0 && off + 16 <= n) {
        const unsigned char *h = buf + off;
        uint32_t sec = big ? be32(h) : le32(h), frac = big ? be32(h + 4) : le32(h + 4);
        uint32_t caplen = big ? be32(h + 8) : le32(h + 8), wire_len = big ? be32(h + 12) : le32(h + 12);
        if (caplen > SCAPY_MTU || (Py_ssize_t)caplen > n - off - 16) break;
        const unsigned char *p = h + 16;
        uint64_t ticks = ticks_of(sec, frac, nano);
        if (put_block(&all, ticks, p, caplen, wire_len) < 0) { failed = 1; break; }
        frames++;
        if (npairs) {
            uint64_t key = 0;
            int found = (always_keyfn || linktype != 1) ? 2 : fast_key(p, caplen, &key, ports, nports);
            if (found == 2 && holds_any(p, caplen, needles, npairs)) {
                PyEval_RestoreThread(released);
                found = slow_key(keyfn, p, caplen, &key);
                released = PyEval_SaveThread();
                if (found < 0) { failed = 2; break; }
            } else if (found == 2) {
                found = 0;
            }
            Py_ssize_t slot = found ? slot_of(pairs, npairs, key) : -1;
            if (slot >= 0 && put_block(&outs[slot], ticks, p, caplen, wire_len) < 0) { failed = 1; break; }
        }
        off += 16 + caplen;
    }
    PyEval_RestoreThread(released);
    if (failed) {
        if (failed == 1) PyErr_NoMemory();
        goto done;
    }
    PyObject *filed = PyList_New(0);
    if (filed == NULL) goto done;
    for (Py_ssize_t i = 0; i < npairs; i++) {
        if (!outs[i].frames) continue;
        PyObject *item = Py_BuildValue("(ny#n)", i, (const char *)outs[i].p, (Py_ssize_t)outs[i].len, outs[i].frames);
        if (item == NULL || PyList_Append(filed, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(filed);
            goto done;
        }
        Py_DECREF(item);
    }
    result = Py_BuildValue("(nny#N)", off, frames, all.p ? (const char *)all.p : "", (Py_ssize_t)all.len, filed);
done:
    free(all.p);
    for (Py_ssize_t i = 0; outs != NULL && i < npairs; i++) free(outs[i].p);
    free(outs);
    free(needles);
    PyBuffer_Release(&view);
    PyBuffer_Release(&pairs_view);
    if (ports_view.obj != NULL) PyBuffer_Release(&ports_view);
    return result;
}

static PyMethodDef methods[] = {
    {"blocks", (PyCFunction)(void (*)(void))blocks, METH_FASTCALL,
     "pcap records to pcapng enhanced packet blocks, filed by flow key."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_evidence", NULL, -1, methods};

PyMODINIT_FUNC PyInit__evidence(void) { return PyModule_Create(&module); }
