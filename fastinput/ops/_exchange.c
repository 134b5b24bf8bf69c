/*
 * fastinput.ops._exchange: where the rows of one shuffle-buffer exchange come from, in one pass.
 *
 * A shuffle over rows (fastinput/ops/row_shuffle.py) exchanges a block of incoming rows through its full buffer
 * as drawing one row at a time does: draw j takes the row in slot slots[j] and puts incoming row j (numbered
 * rows[j]) in its place. Which row each draw gives depends on the draws before it (a slot drawn twice gives,
 * the second time, the row that refilled it), so numpy needs a stable argsort of the slots and half a dozen
 * gathers to work it out (about 3 ms per 100,000 draws); walking the draws in order is a load and two stores
 * per draw (about 0.3 ms). Only row numbers are computed here: the columns are then moved by numpy's take,
 * whatever their type. The GIL is released during the walk.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>

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

static PyMethodDef methods[] = {
    {"plan", py_plan, METH_VARARGS, plan_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_exchange",
    "Where the rows of a shuffle-buffer exchange come from, walking its draws in one pass.",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__exchange(void) { return PyModule_Create(&module); }
