/*
 * fastinput/readers/record_block.h: the layout of a RecordBlock (fastinput.readers._records.RecordBlock).
 *
 * A block holds the data of `count` TFRecord records, CRC-checked, end to end in one allocation: record i is
 * bytes [ends[i], ends[i + 1]) of `data`. `split(..., as_block=True)` hands a block out as a list of `count`
 * references to it, one per record, so the stages between a reader and a mix count and move records as ever; the
 * mix's layout step (fastinput.ops._mixing's `take`) makes record `next` of a block its `bytes` where a batch wants
 * it (and moves `next` on), so the records' `bytes` are allocated in the batch's order, and freed in it.
 * Shared by _records (which makes blocks) and _mixing (which reads them): each includes it.
 */
#ifndef FASTINPUT_READERS_RECORD_BLOCK_H
#define FASTINPUT_READERS_RECORD_BLOCK_H

#include <Python.h>

typedef struct {
    PyObject_HEAD
    Py_ssize_t count; /* records in the block */
    Py_ssize_t next;  /* the next record to make a bytes object of (records are taken in order) */
    Py_ssize_t *ends; /* count + 1 offsets into data; ends[0] is 0 */
    char *data;       /* the records' data, after `ends` in the same allocation */
} RecordBlockObject;

#endif
