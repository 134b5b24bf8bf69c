/*
 * fastinput.ops._shuffle: a run of the buffered shuffle's draws in one call.
 *
 * The shuffle (fastinput.ops.shuffle) holds a buffer of elements, the input's elements pulled but not yet in the
 * buffer (`incoming`, in order), and a block of random numbers in [0, 1) used from its end. Each draw takes the
 * buffer's element at int(r * len(buffer)) for the next r, and puts the next incoming element in its place
 * (`draw`), or, once the input has ended, the buffer's last element (`drain`: the buffer shrinks by one). In
 * Python a draw is a dozen bytecodes holding the GIL: about a quarter of a microsecond, so a batch of 1024 records
 * drawn through a shuffle holds the GIL for a quarter of a millisecond in one stretch, which every other thread of
 * the process (the training step's among them) waits behind. Here a run of draws is a pointer move each.
 *
 * Both check every argument and every random number before they change anything: an error leaves the lists as
 * they were. The one exception is running out of memory while deleting the used parts of the lists at the end
 * (CPython allocates room for the deleted references when there are more than a few): the draws are then made,
 * and a MemoryError is raised. The GIL is held throughout: the work is on Python objects. No reference is
 * dropped until the lists are consistent again (a freed object's finalizer is Python code that could look at them).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

PyDoc_STRVAR(draw_doc,
"draw(buffer, incoming, randoms, count, positions=None, incoming_positions=None) -> list\n"
"\n"
"`count` draws of the buffered shuffle, their elements in a new list. Draw k uses r = randoms[-1 - k] (a float\n"
"in [0, 1)): it takes buffer[int(r * len(buffer))] and puts incoming[k] in its place. Afterwards the `count` last\n"
"randoms and the `count` first incoming elements are deleted. With `positions` (a list as long as `buffer`) and\n"
"`incoming_positions`, each position moves with its element. All are lists; `count` may not exceed\n"
"len(incoming) (nor len(incoming_positions)) or len(randoms); a draw from an empty buffer is an error.\n"
"TypeError or ValueError, nothing changed, for a bad argument or a random number that is not a float in [0, 1).");

PyDoc_STRVAR(drain_doc,
"drain(buffer, randoms, count, positions=None) -> list\n"
"\n"
"`count` draws of the buffered shuffle after its input has ended, their elements in a new list. Draw k uses\n"
"r = randoms[-1 - k] (a float in [0, 1)): it takes buffer[int(r * len(buffer))], moves the buffer's last element\n"
"into its place and drops the last place. Afterwards the `count` last randoms are deleted. With `positions` (a\n"
"list as long as `buffer`), each position moves with its element. `count` may not exceed len(buffer) or\n"
"len(randoms). TypeError or ValueError, nothing changed, for a bad argument or a random number that is not a\n"
"float in [0, 1).");

/* The buffer slot of each draw, from the end of `randoms`: the buffer holds `size` elements at the first draw,
 * and one fewer at each next one if `shrinking`. -1 with an exception set for a bad number. */
static int slots_of(PyObject *randoms, Py_ssize_t count, Py_ssize_t first_size, int shrinking, Py_ssize_t *slots) {
    Py_ssize_t left = PyList_GET_SIZE(randoms);
    for (Py_ssize_t k = 0; k < count; k++) {
        Py_ssize_t size = shrinking ? first_size - k : first_size;
        PyObject *r = PyList_GET_ITEM(randoms, left - 1 - k);
        if (!PyFloat_CheckExact(r)) {
            PyErr_Format(PyExc_TypeError, "draw: randoms[%zd] is a %s, not a float", left - 1 - k,
                         Py_TYPE(r)->tp_name);
            return -1;
        }
        double value = PyFloat_AS_DOUBLE(r);
        /* int(r * size) in Python: the same double product, truncated toward zero */
        double scaled = value * (double)size;
        if (!(value >= 0.0 && value < 1.0) || !(scaled < (double)size)) {
            PyErr_Format(PyExc_ValueError, "draw: randoms[%zd] = %R is not in [0, 1)", left - 1 - k, r);
            return -1;
        }
        slots[k] = (Py_ssize_t)scaled;
    }
    return 0;
}

/* Checks the lists against each other; 0 if they fit, -1 with an exception set if not. */
static int check_arguments(PyObject *buffer, PyObject *incoming, PyObject *randoms, Py_ssize_t count,
                           PyObject *positions, PyObject *incoming_positions) {
    if (count < 0) {
        PyErr_Format(PyExc_ValueError, "draw: count %zd is negative", count);
        return -1;
    }
    if (count > PyList_GET_SIZE(incoming) || count > PyList_GET_SIZE(randoms)) {
        PyErr_Format(PyExc_ValueError, "draw: count %zd exceeds the %zd incoming elements or the %zd randoms",
                     count, PyList_GET_SIZE(incoming), PyList_GET_SIZE(randoms));
        return -1;
    }
    if (count > 0 && PyList_GET_SIZE(buffer) == 0) {
        PyErr_SetString(PyExc_ValueError, "draw: the buffer is empty");
        return -1;
    }
    if ((positions == Py_None) != (incoming_positions == Py_None)) {
        PyErr_SetString(PyExc_TypeError, "draw: positions and incoming_positions come together or not at all");
        return -1;
    }
    if (positions == Py_None) return 0;
    if (!PyList_Check(positions) || !PyList_Check(incoming_positions)) {
        PyErr_SetString(PyExc_TypeError, "draw: positions and incoming_positions must be lists");
        return -1;
    }
    if (PyList_GET_SIZE(positions) != PyList_GET_SIZE(buffer) || count > PyList_GET_SIZE(incoming_positions)) {
        PyErr_Format(PyExc_ValueError, "draw: %zd positions for a buffer of %zd, %zd incoming positions for %zd draws",
                     PyList_GET_SIZE(positions), PyList_GET_SIZE(buffer), PyList_GET_SIZE(incoming_positions), count);
        return -1;
    }
    return 0;
}

/* Moves list[slot]'s reference to out[k] and puts a new reference to source[k] in its place. No reference is
 * dropped here: an object freed in the loop could run a finalizer, Python code that might change the lists. */
static void move(PyObject *list, Py_ssize_t slot, PyObject *source, Py_ssize_t k, PyObject *out) {
    PyObject *replacement = PyList_GET_ITEM(source, k);
    Py_INCREF(replacement);
    PyList_SET_ITEM(out, k, PyList_GET_ITEM(list, slot));
    PyList_SET_ITEM(list, slot, replacement);
}

/* The list the positions a run replaces go to (dropped with it once the lists are consistent again), or NULL with
 * an exception set; Py_None (borrowed) where there are no positions. */
static PyObject *dropped_positions(PyObject *positions, Py_ssize_t count) {
    if (positions == Py_None) return Py_None;
    return PyList_New(count);
}

/* Starts a run of `count` draws: the buffer slot of each (the buffer holds `size` elements at the first draw, one
 * fewer at each next one if `shrinking`), the list of the drawn elements and that of the replaced positions (see
 * dropped_positions). 0, or -1 with an exception set and nothing left allocated. */
static int start_run(PyObject *randoms, Py_ssize_t count, Py_ssize_t size, int shrinking, PyObject *positions,
                     Py_ssize_t **slots, PyObject **out, PyObject **dropped) {
    /* count is at most len(randoms): the allocation is no larger than a list that exists */
    *slots = PyMem_New(Py_ssize_t, count > 0 ? count : 1);
    if (*slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *out = *dropped = NULL;
    if (slots_of(randoms, count, size, shrinking, *slots) == 0 && (*out = PyList_New(count)) != NULL) {
        *dropped = dropped_positions(positions, count);
    }
    if (*dropped == NULL) {
        Py_CLEAR(*out);
        PyMem_Free(*slots);
        return -1;
    }
    return 0;
}

/* Ends a run: frees the slots, drops the replaced positions' references, and returns `out`, or NULL (out dropped)
 * if deleting the lists' used parts `failed`. */
static PyObject *end_run(Py_ssize_t *slots, PyObject *out, PyObject *dropped, PyObject *positions, int failed) {
    PyMem_Free(slots);
    if (positions != Py_None) Py_DECREF(dropped);
    if (failed) Py_CLEAR(out);
    return out;
}

static PyObject *draw(PyObject *self, PyObject *args, PyObject *kwargs) {
    (void)self;
    static char *keywords[] = {"buffer", "incoming", "randoms", "count", "positions", "incoming_positions", NULL};
    PyObject *buffer, *incoming, *randoms, *positions = Py_None, *incoming_positions = Py_None;
    Py_ssize_t count;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!O!O!n|OO:draw", keywords, &PyList_Type, &buffer,
                                     &PyList_Type, &incoming, &PyList_Type, &randoms, &count, &positions,
                                     &incoming_positions)) {
        return NULL;
    }
    if (check_arguments(buffer, incoming, randoms, count, positions, incoming_positions) < 0) return NULL;
    Py_ssize_t *slots;
    PyObject *out, *dropped;
    if (start_run(randoms, count, PyList_GET_SIZE(buffer), 0, positions, &slots, &out, &dropped) < 0) return NULL;
    for (Py_ssize_t k = 0; k < count; k++) {
        move(buffer, slots[k], incoming, k, out);
        if (positions != Py_None) move(positions, slots[k], incoming_positions, k, dropped);
    }
    Py_ssize_t left = PyList_GET_SIZE(randoms);
    int failed = PyList_SetSlice(randoms, left - count, left, NULL) < 0 ||
                 PyList_SetSlice(incoming, 0, count, NULL) < 0 ||
                 (positions != Py_None && PyList_SetSlice(incoming_positions, 0, count, NULL) < 0);
    return end_run(slots, out, dropped, positions, failed);
}

/* Moves list[slot]'s reference to out[k], then list[last]'s into its place (none if they are the same), leaving
 * a reference to None in list[last]. No reference is dropped here (see move). */
static void move_last(PyObject *list, Py_ssize_t slot, Py_ssize_t last, Py_ssize_t k, PyObject *out) {
    PyList_SET_ITEM(out, k, PyList_GET_ITEM(list, slot));
    if (slot != last) PyList_SET_ITEM(list, slot, PyList_GET_ITEM(list, last));
    Py_INCREF(Py_None);
    PyList_SET_ITEM(list, last, Py_None);
}

static PyObject *drain(PyObject *self, PyObject *args, PyObject *kwargs) {
    (void)self;
    static char *keywords[] = {"buffer", "randoms", "count", "positions", NULL};
    PyObject *buffer, *randoms, *positions = Py_None;
    Py_ssize_t count;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!O!n|O:drain", keywords, &PyList_Type, &buffer, &PyList_Type,
                                     &randoms, &count, &positions)) {
        return NULL;
    }
    Py_ssize_t size = PyList_GET_SIZE(buffer);
    if (count < 0 || count > size || count > PyList_GET_SIZE(randoms)) {
        PyErr_Format(PyExc_ValueError, "drain: count %zd is negative or exceeds the buffer's %zd elements or the %zd "
                     "randoms", count, size, PyList_GET_SIZE(randoms));
        return NULL;
    }
    if (positions != Py_None && (!PyList_Check(positions) || PyList_GET_SIZE(positions) != size)) {
        PyErr_Format(PyExc_TypeError, "drain: positions must be a list as long as the buffer (%zd)", size);
        return NULL;
    }
    Py_ssize_t *slots;
    PyObject *out, *dropped;
    if (start_run(randoms, count, size, 1, positions, &slots, &out, &dropped) < 0) return NULL;
    for (Py_ssize_t k = 0; k < count; k++) {
        move_last(buffer, slots[k], size - 1 - k, k, out);
        if (positions != Py_None) move_last(positions, slots[k], size - 1 - k, k, dropped);
    }
    Py_ssize_t left = PyList_GET_SIZE(randoms);
    int failed = PyList_SetSlice(randoms, left - count, left, NULL) < 0 ||
                 PyList_SetSlice(buffer, size - count, size, NULL) < 0 ||
                 (positions != Py_None && PyList_SetSlice(positions, size - count, size, NULL) < 0);
    return end_run(slots, out, dropped, positions, failed);
}

static PyMethodDef methods[] = {
    {"draw", (PyCFunction)(void (*)(void))draw, METH_VARARGS | METH_KEYWORDS, draw_doc},
    {"drain", (PyCFunction)(void (*)(void))drain, METH_VARARGS | METH_KEYWORDS, drain_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_shuffle", "A run of the buffered shuffle's draws in one call.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__shuffle(void) { return PyModule_Create(&module); }
