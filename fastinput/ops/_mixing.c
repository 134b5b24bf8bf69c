/*
 * fastinput.ops._mixing: the layout step of sample_from_datasets / choose_from_datasets in one pass.
 *
 * The mix holds, per input, a list of elements pulled ahead; a request is a run of choices (input indices).
 * `take` walks the choices once, taking each named input's next element into a new list, then removes the
 * elements taken from the front of each input's list. In numpy that is a bincount, a stable argsort, an object
 * array built from the runs and a scatter (about 30 us per 1,024 elements); here it is a pointer copy and an
 * INCREF per element (about 3 us). Given a batch's object array (`out`), it writes the elements there, so a
 * batch of bytes needs no list in between (the fused sample_from_datasets -> batch). The GIL is held throughout:
 * the work is on Python objects.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

PyDoc_STRVAR(take_doc,
"take(choices, buffers, out=None) -> list or bool\n"
"\n"
"The elements the choices name, in their order: `choices` is a C-contiguous int64 array (any object with\n"
"the buffer protocol) of indices into `buffers`, a list of lists; choice i takes the next element of\n"
"buffers[choices[i]] not yet taken. The elements taken are then deleted from the front of each list.\n"
"They come as a new list; or, with `out` (a writable, C-contiguous numpy object array of len(choices)), are\n"
"written into it if every one is a bytes object (as batch lays out a batch of bytes), returning True, and\n"
"else nothing changes and False is returned. IndexError (and nothing changed) if a choice is out of range\n"
"or names a list with too few elements.");

/* The choices as int64s: a buffer of 8-byte signed integers ('l' or 'q'), C-contiguous. */
static int get_choices(PyObject *obj, Py_buffer *view) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
    const char *format = view->format ? view->format : "B";
    if (*format == '<' || *format == '=' || *format == '@') format++;
    if (view->itemsize != 8 || (strcmp(format, "l") != 0 && strcmp(format, "q") != 0)) {
        PyErr_Format(PyExc_TypeError, "take: choices must be int64, got format '%s' of %zd bytes",
                     view->format ? view->format : "B", view->itemsize);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* Checks every choice and counts each list's share, so that nothing changes if one is bad. */
static int count_choices(const int64_t *choice, Py_ssize_t n, PyObject *buffers, Py_ssize_t *counts) {
    Py_ssize_t inputs = PyList_GET_SIZE(buffers);
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t c = choice[i];
        if (c < 0 || c >= inputs) {
            PyErr_Format(PyExc_IndexError, "take: choice %lld at %zd is out of range for %zd buffers",
                         (long long)c, i, inputs);
            return -1;
        }
        counts[c]++;
    }
    for (Py_ssize_t b = 0; b < inputs; b++) {
        PyObject *buffer = PyList_GET_ITEM(buffers, b);
        if (!PyList_Check(buffer)) {
            PyErr_Format(PyExc_TypeError, "take: buffers[%zd] is a %s, not a list", b, Py_TYPE(buffer)->tp_name);
            return -1;
        }
        if (counts[b] > PyList_GET_SIZE(buffer)) {
            PyErr_Format(PyExc_IndexError, "take: %zd choices of buffer %zd, which holds %zd", counts[b], b,
                         PyList_GET_SIZE(buffer));
            return -1;
        }
    }
    return 0;
}

/* The slots of `out`, an object array of `n` elements: a writable, C-contiguous buffer of format 'O'. */
static int get_out(PyObject *obj, Py_ssize_t n, Py_buffer *view) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) < 0) return -1;
    if (!view->format || strcmp(view->format, "O") != 0 || view->itemsize != (Py_ssize_t)sizeof(PyObject *) ||
        view->len / view->itemsize != n) {
        PyErr_Format(PyExc_TypeError, "take: out must be an object array of %zd elements, got format '%s', %zd bytes",
                     n, view->format ? view->format : "B", view->len);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* Whether every element the choices name is a bytes object; `cursor` is left at zeros. */
static int all_bytes(const int64_t *choice, Py_ssize_t n, PyObject *buffers, Py_ssize_t *cursor) {
    int all = 1;
    for (Py_ssize_t i = 0; i < n && all; i++) {
        int64_t c = choice[i];
        all = PyBytes_CheckExact(PyList_GET_ITEM(PyList_GET_ITEM(buffers, c), cursor[c]++));
    }
    memset(cursor, 0, (size_t)PyList_GET_SIZE(buffers) * sizeof(Py_ssize_t));
    return all;
}

static PyObject *py_take(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *choices_obj, *buffers, *out_obj = Py_None;
    if (!PyArg_ParseTuple(args, "OO!|O:take", &choices_obj, &PyList_Type, &buffers, &out_obj)) return NULL;
    Py_buffer view, out_view;
    if (get_choices(choices_obj, &view) < 0) return NULL;
    const int64_t *choice = (const int64_t *)view.buf;
    Py_ssize_t n = view.len / 8, inputs = PyList_GET_SIZE(buffers);
    int into_out = out_obj != Py_None;
    if (into_out && get_out(out_obj, n, &out_view) < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    Py_ssize_t *counts = PyMem_Calloc(inputs ? inputs : 1, sizeof(Py_ssize_t));
    Py_ssize_t *cursor = PyMem_Calloc(inputs ? inputs : 1, sizeof(Py_ssize_t));
    PyObject *result = NULL, *list = NULL;
    if (!counts || !cursor) {
        PyErr_NoMemory();
        goto done;
    }
    if (count_choices(choice, n, buffers, counts) < 0) goto done;
    if (into_out && !all_bytes(choice, n, buffers, cursor)) {
        result = Py_NewRef(Py_False);
        goto done;
    }
    if (!into_out && !(list = PyList_New(n))) goto done;
    PyObject **slots = into_out ? (PyObject **)out_view.buf : NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t c = choice[i];
        PyObject *item = PyList_GET_ITEM(PyList_GET_ITEM(buffers, c), cursor[c]++);
        Py_INCREF(item);
        if (into_out) {
            PyObject *old = slots[i]; /* numpy fills a new object array with None */
            slots[i] = item;
            Py_XDECREF(old);
        } else {
            PyList_SET_ITEM(list, i, item);
        }
    }
    for (Py_ssize_t b = 0; b < inputs; b++) {
        if (counts[b] && PyList_SetSlice(PyList_GET_ITEM(buffers, b), 0, counts[b], NULL) < 0) {
            Py_CLEAR(list);
            goto done;
        }
    }
    result = into_out ? Py_NewRef(Py_True) : list;
done:
    PyMem_Free(counts);
    PyMem_Free(cursor);
    PyBuffer_Release(&view);
    if (into_out) PyBuffer_Release(&out_view);
    return result;
}

static PyMethodDef methods[] = {
    {"take", py_take, METH_VARARGS, take_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_mixing",
    "The layout step of the mixing ops (sample_from_datasets, choose_from_datasets) in one pass.",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__mixing(void) { return PyModule_Create(&module); }
