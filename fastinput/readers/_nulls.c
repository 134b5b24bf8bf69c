/*
 * fastinput.readers._nulls: a numeric column's null slots set to 0, in place, in one pass over its validity bitmap.
 *
 * A Parquet row group's numeric columns are read as the values pyarrow decoded (fastinput/readers/parquet_files.py),
 * nulls read as 0 as make_csv_dataset reads an empty field. Arrow leaves a null slot's value undefined, so each
 * slot whose validity bit is clear is zeroed. numpy does it by unpacking the bitmap into a byte per value and
 * multiplying every value by it (two passes over the column and a temporary array the size of it); here a 64-bit
 * word of the bitmap is read at a time, a word of valid values is skipped and only the null slots are written, with
 * the GIL released.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

PyDoc_STRVAR(zero_nulls_doc,
"zero_nulls(values, validity, offset, length) -> int\n"
"\n"
"Sets to 0 (all bits clear) each of values[offset:offset + length] whose bit in `validity` is clear (bit i of\n"
"the bitmap, least significant first in each byte, says whether values[i] is valid: arrow's layout, where an\n"
"array sliced at `offset` keeps its parent's buffers). `values` is a writable C-contiguous buffer of items of 1,\n"
"2, 4 or 8 bytes (any format but Python objects), `validity` any C-contiguous bytes-like bitmap. Returns the\n"
"number of values zeroed. ValueError (and nothing written) if offset or length is negative or the range passes\n"
"the end of either buffer.");

/* Zeroes values[base + b] for each clear bit b of `word` (only the bits set in `mask` are looked at). */
#define ZERO_CLEAR_BITS(T)                                          \
    do {                                                            \
        uint64_t clear = ~word & mask;                              \
        zeroed += __builtin_popcountll(clear);                      \
        while (clear) {                                             \
            ((T *)data)[base + __builtin_ctzll(clear)] = 0;         \
            clear &= clear - 1;                                     \
        }                                                           \
    } while (0)

static Py_ssize_t zero_range(char *data, Py_ssize_t item, const unsigned char *bits, Py_ssize_t start, Py_ssize_t end) {
    Py_ssize_t zeroed = 0;
    /* Whole 64-bit words of the bitmap from the word holding `start`; the first and last are masked to the range. */
    for (Py_ssize_t base = start & ~(Py_ssize_t)63; base < end; base += 64) {
        uint64_t word = 0;  /* bit b: value base + b; assembled byte by byte, so on any byte order */
        Py_ssize_t bytes = (end - base + 7) / 8;
        for (Py_ssize_t k = 0; k < (bytes < 8 ? bytes : 8); k++) word |= (uint64_t)bits[base / 8 + k] << (8 * k);
        uint64_t mask = ~(uint64_t)0;
        if (base < start) mask &= ~(uint64_t)0 << (start - base);
        if (end - base < 64) mask &= ~(~(uint64_t)0 << (end - base));
        if ((word & mask) == mask) continue;
        switch (item) {
        case 8: ZERO_CLEAR_BITS(uint64_t); break;
        case 4: ZERO_CLEAR_BITS(uint32_t); break;
        case 2: ZERO_CLEAR_BITS(uint16_t); break;
        default: ZERO_CLEAR_BITS(uint8_t); break;
        }
    }
    return zeroed;
}

static PyObject *py_zero_nulls(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *values_obj, *validity_obj;
    Py_ssize_t offset, length;
    if (!PyArg_ParseTuple(args, "OOnn:zero_nulls", &values_obj, &validity_obj, &offset, &length)) return NULL;
    Py_buffer values, validity;
    if (PyObject_GetBuffer(values_obj, &values, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) < 0) return NULL;
    if (PyObject_GetBuffer(validity_obj, &validity, PyBUF_C_CONTIGUOUS) < 0) {
        PyBuffer_Release(&values);
        return NULL;
    }
    PyObject *result = NULL;
    Py_ssize_t item = values.itemsize;
    if ((values.format && strchr(values.format, 'O')) || (item != 1 && item != 2 && item != 4 && item != 8)) {
        PyErr_Format(PyExc_TypeError, "zero_nulls: values must hold numbers of 1, 2, 4 or 8 bytes, got format '%s' "
                     "of %zd bytes", values.format ? values.format : "B", item);
        goto done;
    }
    if (offset < 0 || length < 0 || offset > values.len / item - length || offset > validity.len * 8 - length) {
        PyErr_Format(PyExc_ValueError, "zero_nulls: offset %zd and length %zd pass the end of the values (%zd) or of "
                     "the bitmap (%zd bits), or are negative", offset, length, values.len / item, validity.len * 8);
        goto done;
    }
    Py_ssize_t zeroed;
    Py_BEGIN_ALLOW_THREADS
    zeroed = zero_range(values.buf, item, validity.buf, offset, offset + length);
    Py_END_ALLOW_THREADS
    result = PyLong_FromSsize_t(zeroed);
done:
    PyBuffer_Release(&values);
    PyBuffer_Release(&validity);
    return result;
}

static PyMethodDef methods[] = {
    {"zero_nulls", py_zero_nulls, METH_VARARGS, zero_nulls_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_nulls", "A numeric column's null slots set to 0 in place, from its validity bitmap.",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__nulls(void) { return PyModule_Create(&module); }
