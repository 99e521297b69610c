/* The fast decoder's classic-pcap Ethernet loop (`FastDecoder._pcap_records`), compiled.
 *
 * It counts the frames of the common shapes exactly as the Python loop does (the same keys, at the
 * same offsets, the same frames of unjudged flows only counted) and stops at the first record the
 * Python loop must read itself: whatever goes through `classify` there (tags, IP options, short
 * frames, TCP SYNs, ICMP errors), and a record not all in the buffer. It decides nothing of its
 * own: the tests run both loops on the same bytes and compare the whole result, frame by frame.
 * Without a compiler (setup.py builds it as optional) the Python loop does it all.
 *
 * tally(buf, off, n, big_endian, judged, has_judged, ports, agg, raw, nev, idx, base, linktype, ipv6)
 * (ipv6 None: stop at an IPv6 frame, which the Python loop reads; it also stops at a key of IPv6 addresses)
 *   -> (off, idx, unjudged frames counted)
 *   judged, ports: bytes of sorted big-endian uint32 / uint16 values; agg: the decoder's dict;
 *   raw: the decoder's cache of agg's entries by the frame's facts as bytes (a key hashed once).
 *   A key change in fastdecode.py must be made here too (the equivalence tests say where).
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

/* ---- tally: the whole Ethernet fast path of `_pcap_records`, keys and counts included ----------- */

static inline uint64_t be64(const unsigned char *p) { return ((uint64_t)be32(p) << 32) | be32(p + 4); }

/* One more frame of agg[entry] = [frames, [(index, file offset, link type), ...]]. */
static int bump(PyObject *entry, Py_ssize_t nev, Py_ssize_t idx, long long at, PyObject *linktype) {
    long count = PyLong_AsLong(PyList_GET_ITEM(entry, 0)) + 1;
    if (count == 0 && PyErr_Occurred()) return -1;
    PyObject *value = PyLong_FromLong(count);
    if (value == NULL) return -1;
    PyList_SetItem(entry, 0, value);  /* steals value */
    if (count <= nev) {
        PyObject *position = Py_BuildValue("(nLO)", idx, at, linktype);
        if (position == NULL) return -1;
        int failed = PyList_Append(PyList_GET_ITEM(entry, 1), position) < 0;
        Py_DECREF(position);
        if (failed) return -1;
    }
    return 0;
}

/* Count `key` (a new reference, stolen) in agg; its entry (borrowed), NULL on error. */
static PyObject *count_key(PyObject *agg, PyObject *key, Py_ssize_t nev, Py_ssize_t idx, long long at,
                           PyObject *linktype) {
    if (key == NULL) return NULL;
    PyObject *entry = PyDict_GetItemWithError(agg, key);  /* borrowed */
    if (entry == NULL) {
        if (PyErr_Occurred()) { Py_DECREF(key); return NULL; }
        PyObject *first = Py_BuildValue("[(nLO)]", idx, at, linktype);
        entry = first ? Py_BuildValue("[iN]", 1, first) : NULL;
        int failed = entry == NULL || PyDict_SetItem(agg, key, entry) < 0;
        Py_XDECREF(entry);  /* agg holds it */
        Py_DECREF(key);
        return failed ? NULL : entry;
    }
    Py_DECREF(key);
    return bump(entry, nev, idx, at, linktype) < 0 ? NULL : entry;
}

/* The same frame facts as a short byte string: a key built and hashed once per distinct key,
 * then found by these bytes (`raw`: bytes -> agg's entry). */
typedef struct { unsigned char b[72]; Py_ssize_t len; } Raw;
static inline void put(Raw *r, const void *src, Py_ssize_t n) { memcpy(r->b + r->len, src, n); r->len += n; }
static inline void put_u32(Raw *r, uint32_t v) { put(r, &v, 4); }
static inline void put_u16(Raw *r, uint16_t v) { put(r, &v, 2); }

/* Bump the entry `raw_key` names; 1 if found, 0 if not, -1 on error. */
static int bump_raw(PyObject *raw, Raw *r, PyObject **raw_key, Py_ssize_t nev, Py_ssize_t idx, long long at,
                    PyObject *linktype) {
    *raw_key = PyBytes_FromStringAndSize((const char *)r->b, r->len);
    if (*raw_key == NULL) return -1;
    PyObject *entry = PyDict_GetItemWithError(raw, *raw_key);
    if (entry == NULL) return PyErr_Occurred() ? -1 : 0;
    return bump(entry, nev, idx, at, linktype) < 0 ? -1 : 1;
}

/* Count a frame: by its raw facts when seen before, else by the key `build` makes now. */
#define COUNT(BUILD)                                                                                   \
    do {                                                                                               \
        PyObject *raw_key = NULL;                                                                      \
        int found = bump_raw(raw, &r, &raw_key, nev, idx, at, linktype);                               \
        if (found < 0) { Py_XDECREF(raw_key); goto done; }                                             \
        if (!found) {                                                                                  \
            PyObject *entry = count_key(agg, (BUILD), nev, idx, at, linktype);                         \
            if (entry == NULL || PyDict_SetItem(raw, raw_key, entry) < 0) { Py_DECREF(raw_key); goto done; } \
        }                                                                                              \
        Py_DECREF(raw_key);                                                                            \
    } while (0)

#define U(v) PyLong_FromUnsignedLongLong((unsigned long long)(v))
#define MAC(at) PyBytes_FromStringAndSize((const char *)(at), 6)

static PyObject *echo_obj(int has_echo, uint64_t echo) {
    if (has_echo) return U(echo);
    Py_INCREF(Py_None);
    return Py_None;
}

/* tally(buf, off, n, big_endian, judged, has_judged, ports, agg, raw, nev, idx, base, linktype, ipv6)
 *   -> (off, idx, unjudged): counts every record it can read as `_pcap_records` does, and stops at
 *   the first one the Python loop must read (through `classify`, or a record not all in buf). */
static PyObject *tally(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 16) {
        PyErr_SetString(PyExc_TypeError, "tally takes 16 arguments");
        return NULL;
    }
    Py_buffer view, judged, ports;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) return NULL;
    if (PyObject_GetBuffer(args[4], &judged, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    if (PyObject_GetBuffer(args[6], &ports, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&view);
        PyBuffer_Release(&judged);
        return NULL;
    }
    PyObject *result = NULL;
    Py_ssize_t off = PyLong_AsSsize_t(args[1]);
    Py_ssize_t n = PyLong_AsSsize_t(args[2]);
    int big = PyObject_IsTrue(args[3]);
    int has_judged = PyObject_IsTrue(args[5]);
    PyObject *agg = args[7], *raw = args[8];
    Py_ssize_t nev = PyLong_AsSsize_t(args[9]);
    Py_ssize_t idx = PyLong_AsSsize_t(args[10]);
    long long base = PyLong_AsLongLong(args[11]);
    PyObject *linktype = args[12], *ipv6 = args[13], *classify = args[14], *count_unjudged = args[15];
    if (PyErr_Occurred() || big < 0 || has_judged < 0 || !PyDict_Check(agg) || !PyDict_Check(raw)) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "tally: agg and raw must be dicts");
        goto done;
    }
    if (n > view.len) n = view.len;
    const unsigned char *buf = view.buf;
    const unsigned char *jset = judged.buf, *pset = ports.buf;
    Py_ssize_t jcount = judged.len / 4, pcount = ports.len / 2;
    Py_ssize_t unjudged = 0;

#define JUDGED(a) (in_u32(jset, jcount, (a)))
#define UNJUDGED_PAIR(s, d) (has_judged && !JUDGED(s) && !JUDGED(d))
    while (off >= 0 && off + 16 <= n) {
        const unsigned char *h = buf + off;
        uint32_t caplen = big ? be32(h + 8) : le32(h + 8);
        uint32_t wire_len = big ? be32(h + 12) : le32(h + 12);
        if ((Py_ssize_t)caplen > n - off - 16) break;
        const unsigned char *p = h + 16;
        long long at = base + off;
        Py_ssize_t next = off + 16 + caplen;
        if (caplen < 34) goto slow;
        uint16_t ethertype = be16(p + 12);
        Raw r;
        r.len = 0;
        if (ethertype != 0x0800) {
            if (ethertype == 0x8100 || ethertype == 0x88A8) goto slow;
            if (ethertype == 0x86DD) {
                /* None: the decoder reads IPv6 (core/encap.Reading), in the Python loop: stop here */
                if (ipv6 == Py_None) break;
                Py_INCREF(ipv6);
                if (count_key(agg, ipv6, nev, idx, at, linktype) == NULL) goto done;
            }
            idx++;
            off = next;
            continue;
        }
        if (p[14] != 0x45) goto slow;
        uint16_t total_len = be16(p + 16), ff = be16(p + 20);
        unsigned char proto = p[23];
        uint32_t src = be32(p + 26), dst = be32(p + 30);
        uint64_t pair = ((uint64_t)src << 32) | dst;
        uint16_t frag = ff & 0x3FFF;
        if (proto == 4 && !(ff & 0x1FFF)) goto slow; /* IP-in-IP: keyed by the inner pair, in classify */
        if (proto != 17 || (ff & 0x1FFF)) {
            if (UNJUDGED_PAIR(src, dst)) {
                unjudged++;
            } else {
                int has_echo = 0;
                uint64_t echo = 0;
                if (!(ff & 0x1FFF)) {
                    if (proto == 1) {
                        if (caplen >= 42 && (total_len >= 28 || total_len < 20)) {
                            unsigned type = p[34];
                            if (type == 3) goto slow;
                            if (type == 8 || type == 0) {
                                has_echo = 1;
                                echo = be64(p + 34) & 0xFF000000FFFFFFFFULL;
                            }
                        }
                    } else if (proto == 6 && caplen >= 48 && (p[47] & 2)) {
                        goto slow;
                    }
                }
                /* (pair, MF+offset, proto, total length, wire length, MSS, frag-needed, echo, outer dst MAC) */
                put(&r, "P", 1); put(&r, p + 26, 8); put_u16(&r, frag); put(&r, &proto, 1); put_u16(&r, total_len);
                put_u32(&r, wire_len); put(&r, &has_echo, 1); put(&r, &echo, 8); put(&r, p, 6);
                COUNT(Py_BuildValue("(NNNNNOONN)", U(pair), U(frag), U(proto), U(total_len), U(wire_len), Py_None,
                                    Py_None, echo_obj(has_echo, echo), MAC(p)));
            }
        } else if (caplen < 84 || (total_len >= 20 && total_len < 28)) {
            if (UNJUDGED_PAIR(src, dst) && (caplen < 42 || !in_u16(pset, pcount, be16(p + 36)))) unjudged++;
            else goto slow;
        } else {
            uint16_t dport = be16(p + 36);
            /* shaped like Geneve (version 0, protocol 0x6558): whether it is, the port decides, in classify */
            if (p[42] < 0x40 && p[44] == 0x65 && p[45] == 0x58) goto slow;
            if (!(p[42] & 0x08)) {
                if (p[42] >= 1 && p[42] <= 4) goto slow; /* shaped like WireGuard: the port decides, in classify */
                if (UNJUDGED_PAIR(src, dst)) {
                    if (in_u16(pset, pcount, dport)) {  /* counted per port, by the decoder's own method */
                        PyObject *key = Py_BuildValue("(NNNNNOOONN)", U(pair), U(frag), U(17), U(total_len),
                                                      U(wire_len), Py_None, Py_None, Py_None, MAC(p), U(dport));
                        PyObject *done_with = key ? PyObject_CallOneArg(count_unjudged, key) : NULL;
                        Py_XDECREF(key);
                        if (done_with == NULL) goto done;
                        Py_DECREF(done_with);
                    } else {
                        unjudged++;
                    }
                } else {
                    put(&r, "U", 1); put(&r, p + 26, 8); put_u16(&r, frag); put_u16(&r, total_len);
                    put_u32(&r, wire_len); put(&r, p, 6); put_u16(&r, dport);
                    COUNT(Py_BuildValue("(NNNNNOOONN)", U(pair), U(frag), U(17), U(total_len), U(wire_len), Py_None,
                                        Py_None, Py_None, MAC(p), U(dport)));
                }
            } else if (be16(p + 62) == 0x0800 && (p[64] >> 4) == 4) {
                uint32_t isrc = be32(p + 76), idst = be32(p + 80);
                if (UNJUDGED_PAIR(isrc, idst)) {
                    unjudged++;
                } else {
                    unsigned char inner_vihl = p[64], inner_proto = p[73];
                    uint16_t inner_len = be16(p + 66), inner_ff = be16(p + 70);
                    int has_echo = 0;
                    uint64_t echo = 0;
                    if (inner_proto == 1) {
                        if (inner_vihl != 0x45 || (inner_ff & 0x1FFF)) goto slow;
                        if (caplen >= 92 && (inner_len >= 28 || inner_len < 20)) {
                            unsigned type = p[84];
                            if (type == 3) goto slow;
                            if (type == 8 || type == 0) {
                                has_echo = 1;
                                echo = be64(p + 84) & 0xFF000000FFFFFFFFULL;
                            }
                        }
                    } else if (inner_proto == 6 &&
                               (inner_vihl != 0x45 || (inner_ff & 0x1FFF) || (caplen >= 98 && (p[97] & 2)))) {
                        goto slow;
                    }
                    /* (inner pair, outer pair, dport, VNI<<8|reserved, inner dst MAC, outer MF+offset, inner
                     * proto, inner length, wire length, MSS, frag-needed, echo, outer dst MAC) */
                    put(&r, "V", 1); put(&r, p + 76, 8); put(&r, p + 26, 8); put_u16(&r, dport); put(&r, p + 46, 4);
                    put(&r, p + 50, 6); put_u16(&r, frag); put(&r, &inner_proto, 1); put_u16(&r, inner_len);
                    put_u32(&r, wire_len); put(&r, &has_echo, 1); put(&r, &echo, 8); put(&r, p, 6);
                    COUNT(Py_BuildValue("(NNNNNNNNNOONN)", U(((uint64_t)isrc << 32) | idst), U(pair), U(dport),
                                        U(be32(p + 46)), MAC(p + 50), U(frag), U(inner_proto), U(inner_len),
                                        U(wire_len), Py_None, Py_None, echo_obj(has_echo, echo), MAC(p)));
                }
            } else {
                goto slow;
            }
        }
        idx++;
        off = next;
        continue;
    slow:
        /* What the Python loop reads through `classify`, read by that same function, called from here
         * (a return to the Python loop per such frame cost more than the frame): its key is judged
         * and counted as the Python loop does. */
        {
            PyObject *argv[5] = {args[0], NULL, NULL, NULL, NULL};
            argv[1] = PyLong_FromSsize_t(off + 16);
            argv[2] = PyLong_FromSsize_t(next);
            argv[3] = PyLong_FromLong(1);
            argv[4] = PyLong_FromUnsignedLong(wire_len);
            PyObject *key = (argv[1] && argv[2] && argv[3] && argv[4]) ? PyObject_Vectorcall(classify, argv, 5, NULL)
                                                                        : NULL;
            for (int i = 1; i < 5; i++) Py_XDECREF(argv[i]);
            if (key == NULL) goto done;
            if (key == Py_None) {
                Py_DECREF(key);
            } else {
                int judge_it = 1;
                if (has_judged && PyTuple_Check(key) && PyTuple_GET_SIZE(key) != 1) {
                    unsigned long long first = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(key, 0));
                    if (first == (unsigned long long)-1 && PyErr_Occurred()) {
                        Py_DECREF(key);
                        /* an IPv6 pair (above 64 bits): the Python loop judges this frame */
                        if (!PyErr_ExceptionMatches(PyExc_OverflowError)) goto done;
                        PyErr_Clear();
                        break;
                    }
                    if (!JUDGED((uint32_t)(first >> 32)) && !JUDGED((uint32_t)(first & 0xFFFFFFFFULL))) {
                        /* a key above 64 bits is not a pair of addresses: the Python loop would find neither */
                        judge_it = 0;
                        PyObject *done_with = PyObject_CallOneArg(count_unjudged, key);
                        Py_DECREF(key);
                        if (done_with == NULL) goto done;
                        Py_DECREF(done_with);
                    }
                }
                if (judge_it && count_key(agg, key, nev, idx, at, linktype) == NULL) goto done;
            }
        }
        idx++;
        off = next;
    }
    result = Py_BuildValue("nnn", off, idx, unjudged);
done:
    PyBuffer_Release(&view);
    PyBuffer_Release(&judged);
    PyBuffer_Release(&ports);
    return result;
}

static PyMethodDef methods[] = {
    {"tally", (PyCFunction)(void (*)(void))tally, METH_FASTCALL, "The fast decoder's Ethernet pcap loop, compiled."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_skim", NULL, -1, methods};

PyMODINIT_FUNC PyInit__skim(void) { return PyModule_Create(&module); }
