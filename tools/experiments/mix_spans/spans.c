/*
 * Experiment (issue 19, reverted in the next commit; kept in the history for a re-measure): mixing 8 TFRecord
 * sources with each record held as a span of its source's read buffer, its CRCs checked when read, and made into a
 * bytes object only at `take`, in the order of the choices (the brief's candidate 1). Standalone: no pipeline, no
 * errors, no states; see run.py for the figures.
 *
 * Build: gcc -O3 -shared -fPIC -I$(python -c "import sysconfig; print(sysconfig.get_paths()['include'])") \
 *        spans.c -o spans$(python3-config --extension-suffix)
 */
#define methods records_methods /* _records.c's own module definition, unused here */
#define module records_module
#include "../../../fastinput/readers/_records.c"
#undef methods
#undef module

/* split_spans(buf, pos, max_records, spans) -> (count, new_pos, status): the whole records of `buf` from `pos`, both
 * CRCs checked, noted as (start, length) pairs in `spans` (a writable int64 array of max_records x 2); no objects. */
static PyObject *py_split_spans(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *buf, *spans_obj;
    Py_ssize_t pos, max_records, cursor = 0;
    Parts parts;
    Walk w;
    Py_buffer spans_view;
    unsigned char scratch[FOOTER_SIZE];
    if (!PyArg_ParseTuple(args, "OnnO", &buf, &pos, &max_records, &spans_obj)) return NULL;
    if (get_parts(buf, &parts) < 0) {
        release_parts(&parts);
        return NULL;
    }
    if (pos < 0 || pos > parts.size || PyObject_GetBuffer(spans_obj, &spans_view, PyBUF_WRITABLE) < 0) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "split_spans: pos out of buf");
        release_parts(&parts);
        return NULL;
    }
    if (spans_view.len / (Py_ssize_t)sizeof(Span) < max_records) max_records = spans_view.len / sizeof(Span);
    Span *spans = (Span *)spans_view.buf;
    walk_headers(&parts, pos, max_records, spans, &w);
    for (Py_ssize_t i = 0; i < w.count; i++) {
        const unsigned char *data = byte_in(&parts, part_of(&parts, spans[i].start, 0), spans[i].start);
        const unsigned char *footer = bytes_at(&parts, &cursor, spans[i].start + spans[i].size, FOOTER_SIZE, scratch);
        if (masked_crc(crc_update, data, (size_t)spans[i].size) != load_le32(footer)) {
            w.status = BAD_DATA_CRC;
            w.pos = spans[i].start - HEADER_SIZE;
            w.count = i;
            break;
        }
    }
    PyBuffer_Release(&spans_view);
    release_parts(&parts);
    return Py_BuildValue("(nni)", w.count, w.pos, w.status);
}

#define MAX_SOURCES 64

/* take_spans(choices, bases, spans, ends, cursors, out, prefetch) -> served: for each choice c in turn, a new bytes
 * object of source c's next span (spans[c][cursors[c]] in bases[c]) written into out, until a source has no span
 * left (cursors[c] == ends[c]); with `prefetch`, the source's next record is fetched into the cache meanwhile. */
static PyObject *py_take_spans(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *choices_obj, *bases, *spans_list, *ends_obj, *cursors_obj, *out_obj;
    int prefetch;
    if (!PyArg_ParseTuple(args, "OO!O!OOOp", &choices_obj, &PyList_Type, &bases, &PyList_Type, &spans_list,
                          &ends_obj, &cursors_obj, &out_obj, &prefetch))
        return NULL;
    Py_ssize_t k = PyList_GET_SIZE(bases), i = 0;
    if (k > MAX_SOURCES || PyList_GET_SIZE(spans_list) != k) {
        PyErr_SetString(PyExc_ValueError, "take_spans: up to 64 sources, one spans array each");
        return NULL;
    }
    Py_buffer cv, ev, kv, ov, bv[MAX_SOURCES], sv[MAX_SOURCES];
    const char *base[MAX_SOURCES];
    const Span *span[MAX_SOURCES];
    PyObject_GetBuffer(choices_obj, &cv, PyBUF_SIMPLE);
    PyObject_GetBuffer(ends_obj, &ev, PyBUF_SIMPLE);
    PyObject_GetBuffer(cursors_obj, &kv, PyBUF_WRITABLE);
    PyObject_GetBuffer(out_obj, &ov, PyBUF_WRITABLE);
    for (Py_ssize_t b = 0; b < k; b++) {
        PyObject_GetBuffer(PyList_GET_ITEM(bases, b), &bv[b], PyBUF_SIMPLE);
        PyObject_GetBuffer(PyList_GET_ITEM(spans_list, b), &sv[b], PyBUF_SIMPLE);
        base[b] = bv[b].buf;
        span[b] = sv[b].buf;
    }
    const int64_t *choice = cv.buf, *end = ev.buf;
    int64_t *cursor = kv.buf;
    PyObject **slots = ov.buf;
    Py_ssize_t n = cv.len / 8;
    if (n > ov.len / (Py_ssize_t)sizeof(PyObject *)) n = ov.len / sizeof(PyObject *);
    for (; i < n; i++) {
        int64_t c = choice[i];
        if (c < 0 || c >= k || cursor[c] >= end[c]) break;
        const Span *s = &span[c][cursor[c]++];
        PyObject *record = PyBytes_FromStringAndSize(base[c] + s->start, s->size);
        if (!record) break;
        if (prefetch && cursor[c] < end[c])
            for (Py_ssize_t at = 0; at < s[1].size; at += 64) __builtin_prefetch(base[c] + s[1].start + at, 0, 3);
        PyObject *old = slots[i];
        slots[i] = record;
        Py_XDECREF(old);
    }
    for (Py_ssize_t b = 0; b < k; b++) {
        PyBuffer_Release(&bv[b]);
        PyBuffer_Release(&sv[b]);
    }
    PyBuffer_Release(&cv);
    PyBuffer_Release(&ev);
    PyBuffer_Release(&kv);
    PyBuffer_Release(&ov);
    if (PyErr_Occurred()) return NULL;
    return PyLong_FromSsize_t(i);
}

static PyMethodDef spans_methods[] = {
    {"split_spans", py_split_spans, METH_VARARGS, NULL},
    {"take_spans", py_take_spans, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef spans_module = {PyModuleDef_HEAD_INIT, "spans", NULL, -1, spans_methods,
                                          NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit_spans(void) {
    init_table();
#ifdef HAVE_SSE42_PATH
    if (__builtin_cpu_supports("sse4.2")) {
        init_shift(shift_long, LONG_BLOCK);
        init_shift(shift_short, SHORT_BLOCK);
        crc_update = update_sse42;
    }
#endif
    return PyModule_Create(&spans_module);
}
