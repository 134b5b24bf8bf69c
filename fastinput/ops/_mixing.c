/*
 * fastinput.ops._mixing: the layout step of sample_from_datasets / choose_from_datasets in one pass.
 *
 * The mix holds, per input, a list of elements pulled ahead and a cursor: the list's first `cursor` entries are
 * handed out already. A request is a run of choices (input indices). `take` checks that every choice is in range
 * and every input holds the elements its choices need (else it returns None, nothing changed: the caller pulls
 * more, or deals with what stops the run, and asks again), walks the choices once, taking each named input's
 * next element (moving the list's reference, None left in its place), and moves the cursors on. Nothing is
 * deleted from the lists here (the caller drops the used front when it pulls more), so a request costs a pointer
 * copy per element, whatever the lists hold, and touches no element but to check for bytes.
 * Given a batch's object array (`out`), it writes the elements into its first slots if they are all bytes
 * objects, so a batch of bytes needs no list in between (the fused sample_from_datasets -> batch). The GIL is
 * held throughout: the work is on Python objects.
 *
 * `gather_rows` does the same for inputs of rows held as arrays (numbers): it checks the arguments, the choices and
 * the rows held, then copies each chosen row's bytes into place with the GIL released (pure C work on buffers it
 * holds views of).
 *
 * `draw_bits` makes the choices of equal weights among a power of 2 of inputs from a numpy bit generator's raw
 * 64-bit outputs, as numpy's own calls would (fastinput.ops.choices): a block costs one call, not five.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#include "int64_buffer.h"
#include "numpy/random/bitgen.h"

PyDoc_STRVAR(take_doc,
"take(choices, buffers, cursors, out=None) -> list, int or None\n"
"\n"
"The elements the choices name, in their order: `choices` is a C-contiguous int64 array (any object with\n"
"the buffer protocol) of indices into `buffers`, a list of lists; `cursors` a writable C-contiguous int64\n"
"array of one cursor per list. Choice i takes the next element of buffers[choices[i]] at or after its cursor\n"
"not yet taken, and None takes its place in the list; the cursors are then moved past the elements taken.\n"
"The elements come as a new list; or, with `out` (a writable, C-contiguous numpy object array of at least\n"
"len(choices)), are written into its first slots if every one is a bytes object (as batch lays out a batch of\n"
"bytes), returning how many (else they come as a list, `out` unchanged). None, nothing changed, if a choice\n"
"is out of range or a list holds fewer elements past its cursor than its choices name.");

/* Counts each list's share of the choices. Returns 1 if every choice is in range and every list holds its share
 * past its cursor, 0 if not, -1 on an error (a list that is not a list, a cursor out of its list). */
static int count_choices(const int64_t *choice, Py_ssize_t n, PyObject *buffers, const int64_t *cursor,
                         Py_ssize_t *counts) {
    Py_ssize_t inputs = PyList_GET_SIZE(buffers);
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t c = choice[i];
        if (c < 0 || c >= inputs) return 0;
        counts[c]++;
    }
    int enough = 1;
    for (Py_ssize_t b = 0; b < inputs; b++) {
        PyObject *buffer = PyList_GET_ITEM(buffers, b);
        if (!PyList_Check(buffer)) {
            PyErr_Format(PyExc_TypeError, "take: buffers[%zd] is a %s, not a list", b, Py_TYPE(buffer)->tp_name);
            return -1;
        }
        if (cursor[b] < 0 || cursor[b] > PyList_GET_SIZE(buffer)) {
            PyErr_Format(PyExc_IndexError, "take: cursor %lld of buffer %zd, which holds %zd", (long long)cursor[b],
                         b, PyList_GET_SIZE(buffer));
            return -1;
        }
        if (counts[b] > PyList_GET_SIZE(buffer) - cursor[b]) enough = 0;
    }
    return enough;
}

/* The slots of `out`, an object array of at least `n` elements: a writable, C-contiguous buffer of format 'O'. */
static int get_out(PyObject *obj, Py_ssize_t n, Py_buffer *view) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) < 0) return -1;
    if (!view->format || strcmp(view->format, "O") != 0 || view->itemsize != (Py_ssize_t)sizeof(PyObject *) ||
        view->len / view->itemsize < n) {
        PyErr_Format(PyExc_TypeError, "take: out must be an object array of %zd elements or more, got format '%s', "
                     "%zd bytes",
                     n, view->format ? view->format : "B", view->len);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* Whether every element the choices name is a bytes object. Its touch of each element (made batches ago, out of the
 * cache) costs nothing overall: measured with the check skipped (8 TFRecord sources, 20 rounds, load 2.7), 319.1
 * against 319.3 us of CPU a batch, the miss only moving to the batch's deallocation. */
static int all_bytes(const int64_t *choice, Py_ssize_t n, PyObject *buffers, const int64_t *cursor,
                     Py_ssize_t *next) {
    Py_ssize_t inputs = PyList_GET_SIZE(buffers);
    for (Py_ssize_t b = 0; b < inputs; b++) next[b] = (Py_ssize_t)cursor[b];
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t c = choice[i];
        if (!PyBytes_CheckExact(PyList_GET_ITEM(PyList_GET_ITEM(buffers, c), next[c]++))) return 0;
    }
    return 1;
}

/* Adds `count` references to None at once (a list slot per element taken, or drops them: a negative count), not
 * one by one: each would wait on the last, all being to the one object. None is immortal from Python 3.12 on, where
 * Py_SET_REFCNT leaves it alone. */
static void add_none_references(Py_ssize_t count) { Py_SET_REFCNT(Py_None, Py_REFCNT(Py_None) + count); }

static PyObject *py_take(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *choices_obj, *buffers, *cursors_obj, *out_obj = Py_None;
    if (!PyArg_ParseTuple(args, "OO!O|O:take", &choices_obj, &PyList_Type, &buffers, &cursors_obj, &out_obj))
        return NULL;
    Py_buffer view, cursors_view, out_view;
    if (get_int64_buffer(choices_obj, &view, 0, "take", "choices") < 0) return NULL;
    if (get_int64_buffer(cursors_obj, &cursors_view, 1, "take", "cursors") < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    const int64_t *choice = (const int64_t *)view.buf;
    int64_t *cursor = (int64_t *)cursors_view.buf;
    Py_ssize_t n = view.len / 8, inputs = PyList_GET_SIZE(buffers);
    int into_out = out_obj != Py_None;
    PyObject *result = NULL;
    Py_ssize_t *counts = NULL, *next = NULL;
    if (cursors_view.len / 8 != inputs) {
        PyErr_Format(PyExc_ValueError, "take: %zd cursors for %zd buffers", cursors_view.len / 8, inputs);
        goto release;
    }
    if (into_out && get_out(out_obj, n, &out_view) < 0) goto release;
    counts = PyMem_Calloc(inputs ? inputs : 1, sizeof(Py_ssize_t));
    next = PyMem_Calloc(inputs ? inputs : 1, sizeof(Py_ssize_t));
    if (!counts || !next) {
        PyErr_NoMemory();
        goto done;
    }
    int enough = count_choices(choice, n, buffers, cursor, counts);
    if (enough <= 0) {
        if (enough == 0) result = Py_NewRef(Py_None);
        goto done;
    }
    PyObject **slots = NULL, *list = NULL;
    if (into_out && all_bytes(choice, n, buffers, cursor, next)) {
        slots = (PyObject **)out_view.buf;
    } else if (!(list = PyList_New(n))) {
        goto done;
    }
    for (Py_ssize_t b = 0; b < inputs; b++) next[b] = (Py_ssize_t)cursor[b];
    Py_ssize_t nones = n; /* references to None added: one per list slot, less one per None replaced in `out` */
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t c = choice[i];
        /* the list's reference moves to the result, None takes the slot: the element is not touched here, nor
         * again when the caller drops the list's used front (an element pulled batches ago is out of the cache) */
        PyObject **from = &((PyListObject *)PyList_GET_ITEM(buffers, c))->ob_item[next[c]++];
        PyObject *item = *from;
        *from = Py_None; /* its references are added once, after the loop */
        if (slots) {
            PyObject *old = slots[i]; /* numpy fills a new object array with None: its references go at once */
            slots[i] = item;
            if (old == Py_None) {
                nones--;
            } else {
                Py_XDECREF(old);
            }
        } else {
            PyList_SET_ITEM(list, i, item);
        }
    }
    add_none_references(nones);
    for (Py_ssize_t b = 0; b < inputs; b++) cursor[b] = (int64_t)next[b];
    result = slots ? PyLong_FromSsize_t(n) : list;
done:
    PyMem_Free(counts);
    PyMem_Free(next);
    if (into_out) PyBuffer_Release(&out_view);
release:
    PyBuffer_Release(&view);
    PyBuffer_Release(&cursors_view);
    return result;
}

PyDoc_STRVAR(drop_front_doc,
"drop_front(buffer, count) -> None\n"
"\n"
"del buffer[:count], where those entries are None (the elements `take` moved out): the rest moves to the front\n"
"and the list keeps its room for the next pull, instead of giving it back and growing again. Entries that are\n"
"not all None are deleted as `del` deletes them.");

static PyObject *py_drop_front(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *buffer;
    Py_ssize_t count;
    if (!PyArg_ParseTuple(args, "O!n:drop_front", &PyList_Type, &buffer, &count)) return NULL;
    Py_ssize_t size = PyList_GET_SIZE(buffer);
    if (count < 0 || count > size) {
        PyErr_Format(PyExc_IndexError, "drop_front: %zd entries of a list of %zd", count, size);
        return NULL;
    }
    PyObject **items = ((PyListObject *)buffer)->ob_item;
    for (Py_ssize_t i = 0; i < count; i++) {
        if (items[i] != Py_None) {
            if (PyList_SetSlice(buffer, 0, count, NULL) < 0) return NULL;
            Py_RETURN_NONE;
        }
    }
    memmove(items, items + count, (size_t)(size - count) * sizeof(PyObject *));
    Py_SET_SIZE(buffer, size - count);
    add_none_references(-count);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(draw_bits_doc,
"draw_bits(capsule, shift, out) -> None\n"
"\n"
"Fills `out` (a writable C-contiguous int64 array of even length n) from n/2 raw 64-bit outputs of the numpy\n"
"bit generator whose `capsule` (BitGenerator.capsule) is given: each output's low 32 bits, then its high 32 bits,\n"
"shifted right by `shift` (0 to 31). These are the numbers of `random_raw(n // 2).view(np.uint32) >> shift`,\n"
"and the generator moves on as that call moves it. The caller holds the generator (no other thread draws).");

static PyObject *py_draw_bits(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *capsule, *out_obj;
    int shift;
    if (!PyArg_ParseTuple(args, "O!iO:draw_bits", &PyCapsule_Type, &capsule, &shift, &out_obj)) return NULL;
    if (shift < 0 || shift > 31) {
        PyErr_Format(PyExc_ValueError, "draw_bits: shift must be 0 to 31, got %d", shift);
        return NULL;
    }
    bitgen_t *bitgen = (bitgen_t *)PyCapsule_GetPointer(capsule, "BitGenerator");
    if (!bitgen) return NULL;
    Py_buffer view;
    if (get_int64_buffer(out_obj, &view, 1, "draw_bits", "out") < 0) return NULL;
    Py_ssize_t n = view.len / 8;
    if (n % 2) {
        PyErr_Format(PyExc_ValueError, "draw_bits: out must hold an even number of choices, got %zd", n);
        PyBuffer_Release(&view);
        return NULL;
    }
    int64_t *out = (int64_t *)view.buf;
    for (Py_ssize_t i = 0; i < n; i += 2) {
        uint64_t raw = bitgen->next_raw(bitgen->state);
        out[i] = (int64_t)((uint32_t)raw >> shift);
        out[i + 1] = (int64_t)((uint32_t)(raw >> 32) >> shift);
    }
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(gather_rows_doc,
"gather_rows(choices, sources, cursors, out, advance) -> bool\n"
"\n"
"`take` for inputs of rows (numeric arrays): `choices` a C-contiguous int64 array of indices into `sources`, a\n"
"list of C-contiguous arrays (one per input: its rows along the first dimension); `cursors` a writable\n"
"C-contiguous int64 array of one cursor per source (0 to its rows); `out` a writable C-contiguous array of\n"
"len(choices) rows of the sources' row size in bytes. Row i of `out` is a copy of the next row of\n"
"sources[choices[i]] at or after its cursor not yet taken; with `advance`, the cursors are then moved past the\n"
"rows taken (the last leaf of a batch's gather). False, nothing written, if a choice is out of range or a source\n"
"holds fewer rows past its cursor than its choices name. The GIL is released while the rows are copied.");

/* The row size in bytes of an array viewed with its shape (at least one dimension), or -1 (TypeError set). */
static Py_ssize_t row_bytes(const Py_buffer *view, const char *name) {
    if (view->ndim < 1 || !view->shape) {
        PyErr_Format(PyExc_TypeError, "gather_rows: %s must have a first dimension", name);
        return -1;
    }
    Py_ssize_t bytes = view->itemsize;
    for (int d = 1; d < view->ndim; d++) bytes *= view->shape[d];
    return bytes;
}

static PyObject *py_gather_rows(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *choices_obj, *sources, *cursors_obj, *out_obj;
    int advance;
    if (!PyArg_ParseTuple(args, "OO!OOp:gather_rows", &choices_obj, &PyList_Type, &sources, &cursors_obj, &out_obj,
                          &advance))
        return NULL;
    Py_ssize_t inputs = PyList_GET_SIZE(sources), got = 0;
    Py_buffer view, cursors_view, out_view;
    Py_buffer *source_views = NULL;
    char **bases = NULL;
    Py_ssize_t *next = NULL;
    PyObject *result = NULL;
    if (get_int64_buffer(choices_obj, &view, 0, "gather_rows", "choices") < 0) return NULL;
    if (get_int64_buffer(cursors_obj, &cursors_view, 1, "gather_rows", "cursors") < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    if (PyObject_GetBuffer(out_obj, &out_view, PyBUF_C_CONTIGUOUS | PyBUF_ND | PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&view);
        PyBuffer_Release(&cursors_view);
        return NULL;
    }
    const int64_t *choice = (const int64_t *)view.buf;
    int64_t *cursor = (int64_t *)cursors_view.buf;
    Py_ssize_t n = view.len / 8;
    Py_ssize_t rb = row_bytes(&out_view, "out");
    if (rb < 0) goto done;
    if (out_view.shape[0] != n) {
        PyErr_Format(PyExc_ValueError, "gather_rows: out holds %zd rows for %zd choices", out_view.shape[0], n);
        goto done;
    }
    if (cursors_view.len / 8 != inputs) {
        PyErr_Format(PyExc_ValueError, "gather_rows: %zd cursors for %zd sources", cursors_view.len / 8, inputs);
        goto done;
    }
    source_views = PyMem_Calloc(inputs ? inputs : 1, sizeof(Py_buffer));
    bases = PyMem_Calloc(inputs ? inputs : 1, sizeof(char *));
    next = PyMem_Calloc(inputs ? inputs : 1, sizeof(Py_ssize_t));
    if (!source_views || !bases || !next) {
        PyErr_NoMemory();
        goto done;
    }
    for (; got < inputs; got++) {
        if (PyObject_GetBuffer(PyList_GET_ITEM(sources, got), &source_views[got], PyBUF_C_CONTIGUOUS | PyBUF_ND) < 0)
            goto done;
        Py_ssize_t source_rb = row_bytes(&source_views[got], "every source");
        if (source_rb < 0) {
            got++; /* released below with the others */
            goto done;
        }
        if (source_rb != rb) {
            PyErr_Format(PyExc_ValueError, "gather_rows: source %zd has rows of %zd bytes, out of %zd", got,
                         source_rb, rb);
            got++;
            goto done;
        }
        if (cursor[got] < 0 || cursor[got] > source_views[got].shape[0]) {
            PyErr_Format(PyExc_IndexError, "gather_rows: cursor %lld of source %zd, which holds %zd rows",
                         (long long)cursor[got], got, source_views[got].shape[0]);
            got++;
            goto done;
        }
        bases[got] = (char *)source_views[got].buf;
    }
    /* next[b]: the rows source b's choices take (checked against what it holds), then its next row */
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t c = choice[i];
        if (c < 0 || c >= inputs) {
            result = Py_NewRef(Py_False);
            goto done;
        }
        next[c]++;
    }
    for (Py_ssize_t b = 0; b < inputs; b++) {
        if (next[b] > source_views[b].shape[0] - cursor[b]) {
            result = Py_NewRef(Py_False);
            goto done;
        }
        next[b] = (Py_ssize_t)cursor[b];
    }
    char *to = (char *)out_view.buf;
    Py_BEGIN_ALLOW_THREADS
    if (rb == 8) {
        for (Py_ssize_t i = 0; i < n; i++) {
            int64_t c = choice[i];
            memcpy(to + i * 8, bases[c] + next[c]++ * 8, 8);
        }
    } else {
        for (Py_ssize_t i = 0; i < n; i++) {
            int64_t c = choice[i];
            memcpy(to + i * rb, bases[c] + next[c]++ * rb, (size_t)rb);
        }
    }
    Py_END_ALLOW_THREADS
    if (advance)
        for (Py_ssize_t b = 0; b < inputs; b++) cursor[b] = (int64_t)next[b];
    result = Py_NewRef(Py_True);
done:
    for (Py_ssize_t b = 0; b < got; b++) PyBuffer_Release(&source_views[b]);
    PyMem_Free(source_views);
    PyMem_Free(bases);
    PyMem_Free(next);
    PyBuffer_Release(&out_view);
    PyBuffer_Release(&view);
    PyBuffer_Release(&cursors_view);
    return result;
}

PyDoc_STRVAR(take_spans_doc,
"take_spans(choices, bases, spans, ends, cursors, out) -> int\n"
"\n"
"`take` over inputs whose records are held as spans of their read buffers (TFRecord files mixed,\n"
"fastinput.readers.record_spans): `bases` is a list of the inputs' buffers (bytes-like), `spans` a list of\n"
"C-contiguous int64 arrays of (start, length) pairs into them, `ends` and `cursors` (writable) C-contiguous int64\n"
"arrays of one entry per input: input b holds the spans from cursors[b] to ends[b]. For each choice in turn, a\n"
"new bytes object of the chosen input's next span is written into the next slot of `out` (a writable object\n"
"array of at least len(choices)) and that input's cursor moves on, until a choice is out of range or names an\n"
"input holding no span; returns how many were written. The bytes are made in the order of the choices, so a\n"
"batch's records are allocated together, as one source's are.");

/* Up to this many bytes of an input's next record are fetched into the cache as its current one is made. */
#define SPAN_PREFETCH 4096

static void release_views(Py_buffer *views, Py_ssize_t count) {
    for (Py_ssize_t b = 0; b < count; b++) PyBuffer_Release(&views[b]);
}

static PyObject *py_take_spans(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *choices_obj, *bases, *spans_list, *ends_obj, *cursors_obj, *out_obj, *result = NULL;
    if (!PyArg_ParseTuple(args, "OO!O!OOO:take_spans", &choices_obj, &PyList_Type, &bases, &PyList_Type,
                          &spans_list, &ends_obj, &cursors_obj, &out_obj))
        return NULL;
    Py_ssize_t inputs = PyList_GET_SIZE(bases), got_bases = 0, got_spans = 0;
    Py_buffer choices_view, ends_view, cursors_view, out_view;
    Py_buffer *base_views = NULL, *span_views = NULL;
    if (get_int64_buffer(choices_obj, &choices_view, 0, "take_spans", "choices") < 0) return NULL;
    if (get_int64_buffer(ends_obj, &ends_view, 0, "take_spans", "ends") < 0) goto release_choices;
    if (get_int64_buffer(cursors_obj, &cursors_view, 1, "take_spans", "cursors") < 0) goto release_ends;
    Py_ssize_t n = choices_view.len / 8;
    if (get_out(out_obj, n, &out_view) < 0) goto release_cursors;
    if (PyList_GET_SIZE(spans_list) != inputs || ends_view.len / 8 != inputs || cursors_view.len / 8 != inputs) {
        PyErr_Format(PyExc_ValueError, "take_spans: %zd bases, %zd span arrays, %zd ends and %zd cursors: one of "
                     "each per input", inputs, PyList_GET_SIZE(spans_list), ends_view.len / 8, cursors_view.len / 8);
        goto release_out;
    }
    base_views = PyMem_New(Py_buffer, inputs ? inputs : 1);
    span_views = PyMem_New(Py_buffer, inputs ? inputs : 1);
    if (!base_views || !span_views) {
        PyErr_NoMemory();
        goto release_inputs;
    }
    const int64_t *end = (const int64_t *)ends_view.buf;
    int64_t *cursor = (int64_t *)cursors_view.buf;
    for (; got_bases < inputs; got_bases++)
        if (PyObject_GetBuffer(PyList_GET_ITEM(bases, got_bases), &base_views[got_bases], PyBUF_SIMPLE) < 0)
            goto release_inputs;
    for (; got_spans < inputs; got_spans++) {
        if (get_int64_buffer(PyList_GET_ITEM(spans_list, got_spans), &span_views[got_spans], 0, "take_spans",
                             "spans") < 0)
            goto release_inputs;
        Py_ssize_t b = got_spans, held = span_views[b].len / 16;
        if (cursor[b] < 0 || cursor[b] > end[b] || end[b] > held) {
            PyErr_Format(PyExc_IndexError, "take_spans: input %zd: cursor %lld and end %lld, of %zd spans", b,
                         (long long)cursor[b], (long long)end[b], held);
            got_spans++;
            goto release_inputs;
        }
    }
    const int64_t *choice = (const int64_t *)choices_view.buf;
    PyObject **slots = (PyObject **)out_view.buf;
    Py_ssize_t i = 0;
    for (; i < n; i++) {
        int64_t c = choice[i];
        if (c < 0 || c >= inputs || cursor[c] == end[c]) break;
        const int64_t *span = (const int64_t *)span_views[c].buf + 2 * cursor[c];
        int64_t start = span[0], length = span[1], size = base_views[c].len;
        if (start < 0 || length < 0 || start > size || length > size - start) { /* never adds past the buffer */
            PyErr_Format(PyExc_IndexError, "take_spans: input %lld: span (%lld, %lld) out of its buffer of %lld "
                         "bytes", (long long)c, (long long)start, (long long)length, (long long)size);
            break;
        }
        const char *data = (const char *)base_views[c].buf;
        PyObject *record = PyBytes_FromStringAndSize(data + start, (Py_ssize_t)length);
        if (!record) break;
        cursor[c]++;
        if (cursor[c] < end[c]) { /* the input's next record: in the cache by the time it is chosen */
            int64_t next = span[2], next_length = span[3] < SPAN_PREFETCH ? span[3] : SPAN_PREFETCH;
            if (next >= 0 && next_length >= 0 && next <= size && next_length <= size - next)
                for (int64_t at = 0; at < next_length; at += 64) __builtin_prefetch(data + next + at, 0, 3);
        }
        PyObject *old = slots[i];
        slots[i] = record;
        Py_XDECREF(old);
    }
    if (!PyErr_Occurred()) result = PyLong_FromSsize_t(i);
release_inputs:
    if (base_views) release_views(base_views, got_bases);
    if (span_views) release_views(span_views, got_spans);
    PyMem_Free(base_views);
    PyMem_Free(span_views);
release_out:
    PyBuffer_Release(&out_view);
release_cursors:
    PyBuffer_Release(&cursors_view);
release_ends:
    PyBuffer_Release(&ends_view);
release_choices:
    PyBuffer_Release(&choices_view);
    return result;
}

static PyMethodDef methods[] = {
    {"take", py_take, METH_VARARGS, take_doc},
    {"drop_front", py_drop_front, METH_VARARGS, drop_front_doc},
    {"draw_bits", py_draw_bits, METH_VARARGS, draw_bits_doc},
    {"gather_rows", py_gather_rows, METH_VARARGS, gather_rows_doc},
    {"take_spans", py_take_spans, METH_VARARGS, take_spans_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_mixing",
    "The layout step of the mixing ops (sample_from_datasets, choose_from_datasets) in one pass, and their draws\n"
    "among equal weights from a bit generator's raw outputs.",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__mixing(void) { return PyModule_Create(&module); }
