/*
 * fastinput/ops/int64_buffer.h: reading an int64 argument of a C kernel through the buffer protocol.
 * Shared by the ops' extensions (_mixing, _exchange); each includes it, so each keeps its own static copy.
 */
#ifndef FASTINPUT_OPS_INT64_BUFFER_H
#define FASTINPUT_OPS_INT64_BUFFER_H

#include <Python.h>
#include <string.h>

/*
 * `obj` as a buffer of 8-byte signed integers ('l' or 'q', any byte-order mark), C-contiguous, writable if asked.
 * On a wrong type: TypeError "<function>: <name> must be int64, ...", nothing held, -1.
 */
static int get_int64_buffer(PyObject *obj, Py_buffer *view, int writable, const char *function, const char *name) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0)) < 0)
        return -1;
    const char *format = view->format ? view->format : "B";
    if (*format == '<' || *format == '=' || *format == '@') format++;
    if (view->itemsize != 8 || (strcmp(format, "l") != 0 && strcmp(format, "q") != 0)) {
        PyErr_Format(PyExc_TypeError, "%s: %s must be int64, got format '%s' of %zd bytes", function, name,
                     view->format ? view->format : "B", view->itemsize);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

#endif
