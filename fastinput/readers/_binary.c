/*
 * fastinput.readers._binary: the offsets of several arrow binary columns' rows, each from 0, in one call.
 *
 * A batch of Parquet rows with string_type="packed" (fastinput/readers/parquet.py) gives each string column as a
 * fi.PackedStrings: its bytes (a view of arrow's data buffer) and int64 offsets from 0. Made column by column
 * from arrow's buffers, that is half a dozen numpy calls a column (about 4.4 us each; 26 columns x 391 batches
 * per epoch of the Criteo benchmark, ~45 ms on the thread that cuts the batches). Here one call writes the
 * offsets of all of a batch's columns into one int64 array, with the GIL released during the writes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>

PyDoc_STRVAR(offsets_doc,
"offsets(offsets, starts, length, out) -> list\n"
"\n"
"Column i is an arrow binary (or utf8) array of `length` values starting at value starts[i] of its int32\n"
"offsets buffer offsets[i]. Writes into `out` (a writable C-contiguous buffer of len(offsets) * (length + 1)\n"
"int64) each column's length + 1 offsets less its first, column after column, and returns each column's first\n"
"offset: value k of column i is data[i][first + out[i, k]:first + out[i, k + 1]]. offsets and starts are lists\n"
"of the same length. ValueError (and nothing written) if a start or the length is negative or a column's\n"
"values pass the end of its offsets.");

static PyObject *py_offsets(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *offsets_list, *starts, *out_obj;
    Py_ssize_t length;
    if (!PyArg_ParseTuple(args, "O!O!nO:offsets", &PyList_Type, &offsets_list, &PyList_Type, &starts, &length,
                          &out_obj))
        return NULL;
    Py_ssize_t count = PyList_GET_SIZE(offsets_list);
    if (PyList_GET_SIZE(starts) != count || length < 0) {
        PyErr_Format(PyExc_ValueError, "offsets: %zd offsets and %zd starts (as many of each) and length %zd (not "
                     "negative)", count, PyList_GET_SIZE(starts), length);
        return NULL;
    }
    Py_buffer out;
    if (PyObject_GetBuffer(out_obj, &out, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) return NULL;
    Py_buffer *views = PyMem_Calloc((size_t)count + 1, sizeof(Py_buffer));
    const int32_t **columns = PyMem_Calloc((size_t)count + 1, sizeof(int32_t *)); /* each one's own offsets */
    PyObject *firsts = NULL;
    if (views == NULL || columns == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (out.len != count * (length + 1) * (Py_ssize_t)sizeof(int64_t)) {
        PyErr_Format(PyExc_ValueError, "offsets: out has %zd bytes, %zd columns of %zd offsets need %zd", out.len,
                     count, length + 1, count * (length + 1) * (Py_ssize_t)sizeof(int64_t));
        goto done;
    }
    if ((firsts = PyList_New(count)) == NULL) goto done;
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_ssize_t start = PyLong_AsSsize_t(PyList_GET_ITEM(starts, i));
        if (start == -1 && PyErr_Occurred()) goto done;
        if (PyObject_GetBuffer(PyList_GET_ITEM(offsets_list, i), &views[i], PyBUF_C_CONTIGUOUS) < 0) goto done;
        Py_ssize_t values = views[i].len / (Py_ssize_t)sizeof(int32_t);
        if (start < 0 || start > values - length - 1) {
            PyErr_Format(PyExc_ValueError, "offsets: column %zd starts at %zd, and %zd values pass the end of its %zd "
                         "offsets (or the start is negative)", i, start, length, values);
            goto done;
        }
        columns[i] = (const int32_t *)views[i].buf + start;
        PyObject *first = PyLong_FromLong(columns[i][0]);
        if (first == NULL) goto done;
        PyList_SET_ITEM(firsts, i, first);
    }
    int64_t *written = out.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < count; i++) {
        const int32_t *offsets = columns[i];
        int64_t first = offsets[0];
        for (Py_ssize_t k = 0; k <= length; k++) written[k] = offsets[k] - first;
        written += length + 1;
    }
    Py_END_ALLOW_THREADS
done:
    if (views != NULL) {
        for (Py_ssize_t i = 0; i < count; i++) {
            if (views[i].obj != NULL) PyBuffer_Release(&views[i]);
        }
    }
    PyMem_Free(views);
    PyMem_Free(columns);
    PyBuffer_Release(&out);
    if (PyErr_Occurred()) {
        Py_XDECREF(firsts);
        return NULL;
    }
    return firsts;
}

static PyMethodDef methods[] = {
    {"offsets", py_offsets, METH_VARARGS, offsets_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_binary", "The offsets of several arrow binary columns' rows, each from 0, in one call.",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__binary(void) { return PyModule_Create(&module); }
