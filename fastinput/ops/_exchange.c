/*
 * fastinput.ops._exchange: where the rows of one shuffle-buffer exchange come from, in one pass.
 *
 * A shuffle over rows (fastinput/ops/row_shuffle.py) exchanges a block of incoming rows through its full buffer
 * as drawing one row at a time does: draw j takes the row in slot slots[j] and puts incoming row j (numbered
 * rows[j]) in its place. Which row each draw gives depends on the draws before it (a slot drawn twice gives,
 * the second time, the row that refilled it), so numpy needs a stable argsort of the slots and half a dozen
 * gathers to work it out (about 3 ms per 100,000 draws); walking the draws in order is a load and two stores
 * per draw (about 0.3 ms). `plan` computes only row numbers (the columns are then moved by numpy's or arrow's
 * take, whatever their type); `exchange` walks the draws on the values of several numeric columns at once, in
 * one call: each value moves once into the buffer and once out of it, with no plan, no copy of the incoming
 * rows into a work array and no gather + scatter per column. The GIL is released during the walks.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "int64_buffer.h"

PyDoc_STRVAR(plan_doc,
"plan(slots, rows, slot_rows, sources, refill_slots, refill_rows) -> int\n"
"\n"
"Walks the draws of one exchange in order: draw j gives the row slot slots[j] holds (written to sources[j])\n"
"and the slot then holds rows[j]. `slot_rows` is scratch space of one element per slot that must hold\n"
"arange(capacity) (each slot its own row) and is left so. Returns k, the number of slots drawn: the first k\n"
"elements of refill_slots and refill_rows are then each such slot and the row it holds after the exchange.\n"
"All six are C-contiguous int64 arrays (any object with the buffer protocol), the last four written; slots,\n"
"rows, sources, refill_slots and refill_rows have one element per draw. IndexError (and nothing written) if\n"
"a slot is outside slot_rows or a row is negative.");

static PyObject *py_plan(PyObject *self, PyObject *args) {
    (void)self;
    enum { SLOTS, ROWS, SLOT_ROWS, SOURCES, REFILL_SLOTS, REFILL_ROWS, ARGS };
    static const char *names[ARGS] = {"slots", "rows", "slot_rows", "sources", "refill_slots", "refill_rows"};
    PyObject *objects[ARGS];
    if (!PyArg_ParseTuple(args, "OOOOOO:plan", &objects[0], &objects[1], &objects[2], &objects[3], &objects[4],
                          &objects[5]))
        return NULL;
    Py_buffer views[ARGS];
    int got = 0;
    PyObject *result = NULL;
    for (; got < ARGS; got++) {
        if (get_int64_buffer(objects[got], &views[got], got >= SLOT_ROWS, "plan", names[got]) < 0) goto done;
    }
    Py_ssize_t draws = views[SLOTS].len / 8, capacity = views[SLOT_ROWS].len / 8;
    for (int i = ROWS; i < ARGS; i++) {
        if (i != SLOT_ROWS && views[i].len / 8 != draws) {
            PyErr_Format(PyExc_ValueError, "plan: %s has %zd elements, slots %zd", names[i], views[i].len / 8, draws);
            goto done;
        }
    }
    const int64_t *slots = views[SLOTS].buf, *rows = views[ROWS].buf;
    int64_t *kept = views[SLOT_ROWS].buf, *sources = views[SOURCES].buf;
    int64_t *refill_slots = views[REFILL_SLOTS].buf, *refill_rows = views[REFILL_ROWS].buf;
    Py_ssize_t refills = 0;
    for (Py_ssize_t j = 0; j < draws; j++) {
        if (slots[j] < 0 || slots[j] >= capacity || rows[j] < 0) {
            PyErr_Format(PyExc_IndexError, "plan: draw %zd has slot %lld (of %zd) and row %lld (rows are >= 0)",
                         j, (long long)slots[j], capacity, (long long)rows[j]);
            goto done;
        }
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t j = 0; j < draws; j++) {
        int64_t slot = slots[j];
        sources[j] = kept[slot];
        kept[slot] = rows[j];
    }
    /* The slots drawn, last draw first: each once (marked -1 when seen; rows are never negative), then reset. */
    for (Py_ssize_t j = draws - 1; j >= 0; j--) {
        int64_t slot = slots[j];
        if (kept[slot] >= 0) {
            refill_slots[refills] = slot;
            refill_rows[refills++] = kept[slot];
            kept[slot] = -1;
        }
    }
    for (Py_ssize_t k = 0; k < refills; k++) kept[refill_slots[k]] = refill_slots[k];
    Py_END_ALLOW_THREADS
    result = PyLong_FromSsize_t(refills);
done:
    for (int i = 0; i < got; i++) PyBuffer_Release(&views[i]);
    return result;
}

PyDoc_STRVAR(exchange_doc,
"exchange(buffers, pieces, slots, order, outs) -> None\n"
"\n"
"The draws of one exchange walked on the values of several columns: for draw j, in order,\n"
"outs[c][j] = buffers[c][slots[j]], then buffers[c][slots[j]] = incoming row j of column c, which is row\n"
"order[j] of pieces[c] (a list of arrays) end to end. buffers[c] (the buffer's values: one per slot) and\n"
"outs[c] (one value per draw) are writable; every buffer of column c is C-contiguous with the item size of\n"
"buffers[c] (any format but Python objects: values are moved as bytes). Every column has the same number of\n"
"slots and pieces of the same lengths. slots and order are C-contiguous int64 arrays of one element per\n"
"draw. IndexError (and nothing written) if a slot or an order is out of range; ValueError if the shapes\n"
"disagree.");

/* Moves one column's values: `T` is an unsigned integer type of the item size (bit patterns copied as they are). */
#define EXCHANGE_WALK(T)                                                                        \
    do {                                                                                        \
        T *restrict values = (T *)buffer, *restrict drawn = (T *)out;                           \
        for (Py_ssize_t j = 0; j < draws; j++) {                                                \
            int64_t slot = slots[j];                                                            \
            T incoming = ((const T *)bases[piece_of[j]])[row_of[j]];                            \
            drawn[j] = values[slot];                                                            \
            values[slot] = incoming;                                                            \
        }                                                                                       \
    } while (0)

/* One column: `bases` its pieces' data, `piece_of` / `row_of` where each draw's incoming row is. The buffer, the
 * out and the pieces are distinct arrays (restrict: the compiler need not reload an index after each store). */
static void walk_column(char *restrict buffer, char *restrict out, const char *const *restrict bases, Py_ssize_t item,
                        Py_ssize_t draws, const int64_t *restrict slots, const int32_t *restrict piece_of,
                        const int64_t *restrict row_of) {
    switch (item) {
    case 8: EXCHANGE_WALK(uint64_t); break;
    case 4: EXCHANGE_WALK(uint32_t); break;
    case 2: EXCHANGE_WALK(uint16_t); break;
    case 1: EXCHANGE_WALK(uint8_t); break;
    default:
        for (Py_ssize_t j = 0; j < draws; j++) {
            memcpy(out + j * item, buffer + slots[j] * item, (size_t)item);
            memcpy(buffer + slots[j] * item, bases[piece_of[j]] + row_of[j] * item, (size_t)item);
        }
    }
}

/* The buffer of `obj`, C-contiguous (writable if asked), of the item size `item` (0: any; set to the one seen). */
static int get_values(PyObject *obj, Py_buffer *view, int writable, Py_ssize_t *item, const char *name) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0)) < 0)
        return -1;
    if ((view->format && strchr(view->format, 'O')) || view->itemsize < 1 || (*item && view->itemsize != *item)) {
        PyErr_Format(PyExc_TypeError, "exchange: %s must hold values of %zd bytes that are not Python objects, got "
                     "format '%s' of %zd bytes", name, *item, view->format ? view->format : "B", view->itemsize);
        PyBuffer_Release(view);
        return -1;
    }
    *item = view->itemsize;
    return 0;
}

static PyObject *py_exchange(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *buffers, *pieces, *slots_obj, *order_obj, *outs;
    if (!PyArg_ParseTuple(args, "O!O!OOO!:exchange", &PyList_Type, &buffers, &PyList_Type, &pieces, &slots_obj,
                          &order_obj, &PyList_Type, &outs))
        return NULL;
    Py_ssize_t columns = PyList_GET_SIZE(buffers);
    if (PyList_GET_SIZE(pieces) != columns || PyList_GET_SIZE(outs) != columns || columns == 0) {
        PyErr_Format(PyExc_ValueError, "exchange: %zd buffers, %zd lists of pieces and %zd outs (at least one each, "
                     "as many of each)", columns, PyList_GET_SIZE(pieces), PyList_GET_SIZE(outs));
        return NULL;
    }
    PyObject *first = PyList_GET_ITEM(pieces, 0);
    if (!PyList_Check(first) || PyList_GET_SIZE(first) == 0) {
        PyErr_SetString(PyExc_ValueError, "exchange: pieces[0] must be a non-empty list of arrays");
        return NULL;
    }
    Py_ssize_t npieces = PyList_GET_SIZE(first);
    /* Every buffer the call holds: per column its buffer, its out and its pieces; then slots and order. */
    Py_ssize_t nviews = columns * (2 + npieces) + 2, got = 0;
    Py_buffer *views = PyMem_Calloc((size_t)nviews, sizeof(Py_buffer));
    const char **bases = PyMem_Calloc((size_t)(columns * npieces), sizeof(char *));
    Py_ssize_t *ends = PyMem_Calloc((size_t)npieces, sizeof(Py_ssize_t));
    int32_t *piece_of = NULL;
    int64_t *row_of = NULL;
    PyObject *result = NULL;
    if (views == NULL || bases == NULL || ends == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (get_int64_buffer(slots_obj, &views[got], 0, "exchange", "slots") < 0) goto done;
    const int64_t *slots = views[got++].buf;
    Py_ssize_t draws = views[got - 1].len / 8;
    if (get_int64_buffer(order_obj, &views[got], 0, "exchange", "order") < 0) goto done;
    const int64_t *order = views[got++].buf;
    if (views[got - 1].len / 8 != draws) {
        PyErr_Format(PyExc_ValueError, "exchange: %zd slots and %zd orders", draws, views[got - 1].len / 8);
        goto done;
    }
    Py_ssize_t capacity = -1;
    for (Py_ssize_t c = 0; c < columns; c++) {
        Py_ssize_t item = 0;
        Py_buffer *buffer = &views[got], *out = &views[got + 1];
        if (get_values(PyList_GET_ITEM(buffers, c), buffer, 1, &item, "a buffer") < 0) goto done;
        got++;
        if (get_values(PyList_GET_ITEM(outs, c), out, 1, &item, "an out") < 0) goto done;
        got++;
        if (capacity < 0) capacity = buffer->len / item;
        if (buffer->len / item != capacity || out->len / item != draws) {
            PyErr_Format(PyExc_ValueError, "exchange: column %zd has %zd slots (%zd expected) and %zd outs for %zd "
                         "draws", c, buffer->len / item, capacity, out->len / item, draws);
            goto done;
        }
        PyObject *list = PyList_GET_ITEM(pieces, c);
        if (!PyList_Check(list) || PyList_GET_SIZE(list) != npieces) {
            PyErr_Format(PyExc_ValueError, "exchange: pieces[%zd] must be a list of %zd arrays", c, npieces);
            goto done;
        }
        Py_ssize_t end = 0;
        for (Py_ssize_t p = 0; p < npieces; p++) {
            Py_buffer *piece = &views[got];
            if (get_values(PyList_GET_ITEM(list, p), piece, 0, &item, "a piece") < 0) goto done;
            got++;
            end += piece->len / item;
            if (c == 0) ends[p] = end;
            else if (ends[p] != end) {
                PyErr_Format(PyExc_ValueError, "exchange: the pieces of column %zd differ in length from column 0's",
                             c);
                goto done;
            }
            bases[c * npieces + p] = piece->buf;
        }
    }
    Py_ssize_t incoming = ends[npieces - 1];
    for (Py_ssize_t j = 0; j < draws; j++) {
        if (slots[j] < 0 || slots[j] >= capacity || order[j] < 0 || order[j] >= incoming) {
            PyErr_Format(PyExc_IndexError, "exchange: draw %zd has slot %lld (of %zd) and order %lld (of %zd rows)",
                         j, (long long)slots[j], capacity, (long long)order[j], incoming);
            goto done;
        }
    }
    piece_of = malloc((size_t)(draws ? draws : 1) * sizeof(int32_t));
    row_of = malloc((size_t)(draws ? draws : 1) * sizeof(int64_t));
    if (piece_of == NULL || row_of == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t j = 0; j < draws; j++) {  /* pieces are few (an interleave's cycle): a short scan each */
        int32_t p = 0;
        while (order[j] >= ends[p]) p++;
        piece_of[j] = p;
        row_of[j] = order[j] - (p ? ends[p - 1] : 0);
    }
    for (Py_ssize_t c = 0; c < columns; c++) {
        Py_buffer *buffer = &views[2 + c * (2 + npieces)];
        walk_column(buffer->buf, buffer[1].buf, bases + c * npieces, buffer->itemsize, draws, slots, piece_of,
                    row_of);
    }
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    for (Py_ssize_t i = 0; i < got; i++) PyBuffer_Release(&views[i]);
    PyMem_Free(views);
    PyMem_Free(bases);
    PyMem_Free(ends);
    free(piece_of);
    free(row_of);
    return result;
}

static PyMethodDef methods[] = {
    {"plan", py_plan, METH_VARARGS, plan_doc},
    {"exchange", py_exchange, METH_VARARGS, exchange_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_exchange",
    "A shuffle-buffer exchange, walking its draws in one pass (on row numbers, or on numeric columns' values).",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__exchange(void) { return PyModule_Create(&module); }
