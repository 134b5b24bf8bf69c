/*
 * fastinput.readers._records: TFRecord framing, walked in C with the GIL released.
 *
 * Each record on disk is: uint64 length (little endian), uint32 masked CRC32C of those 8
 * bytes, the data, uint32 masked CRC32C of the data. `split` finds the records of a buffer
 * without the GIL, takes it back only to allocate one `bytes` object per record, then checks
 * each record's data CRC and copies it into its object while it is still in the cache, again
 * without the GIL. So several reader threads can walk their files at once, the GIL is held
 * for about one allocation per record, and a thread waiting for it (an event loop receiving
 * the next response) is not held up by the copies.
 *
 * The buffer may also be a list of buffers that follow one another in the stream (a remote
 * response in the parts it arrived in): a record that straddles two of them is copied out of
 * both, so they never need joining.
 *
 * CRC32C (Castagnoli) uses the SSE4.2 crc32 instruction where the CPU has it (x86-64,
 * checked once at import), and a portable table-driven loop (slicing-by-8) elsewhere.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define HEADER_SIZE 12 /* length + its CRC */
#define FOOTER_SIZE 4  /* the data's CRC */
#define MASK_DELTA 0xa282ead8u
#define POLY 0x82f63b78u /* CRC32C's polynomial, bit-reflected */

/* masked_crc32c and split's copies release the GIL from this size on; below it the release costs more than it frees. */
#define RELEASE_GIL_BYTES (64 * 1024)

/* Why `split` stopped; the Python side reads these as module constants. */
enum { DONE = 0, NEED_MORE = 1, BAD_LENGTH_CRC = 2, BAD_DATA_CRC = 3 };

static inline uint32_t load_le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t load_le64(const unsigned char *p) {
    return (uint64_t)load_le32(p) | (uint64_t)load_le32(p + 4) << 32;
}

/* ------------------------------------------------------------------------------------------------ */
/* CRC32C. Both implementations update a raw register, without CRC32C's initial and final
 * inversions (masked_crc adds those), so that runs of data can be joined (see below).            */

typedef uint32_t (*CrcUpdate)(uint32_t reg, const unsigned char *p, size_t n);

static uint32_t table[8][256]; /* table[k][b]: register after byte b followed by k zero bytes */

static void init_table(void) {
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t reg = b;
        for (int bit = 0; bit < 8; bit++) reg = reg & 1 ? (reg >> 1) ^ POLY : reg >> 1;
        table[0][b] = reg;
    }
    for (int k = 1; k < 8; k++)
        for (int b = 0; b < 256; b++) table[k][b] = table[0][table[k - 1][b] & 0xff] ^ (table[k - 1][b] >> 8);
}

/* Portable: eight bytes per step through eight tables (slicing-by-8), then byte by byte. */
static uint32_t update_portable(uint32_t reg, const unsigned char *p, size_t n) {
    for (; n >= 8; p += 8, n -= 8) {
        uint32_t lo = reg ^ load_le32(p), hi = load_le32(p + 4);
        reg = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^ table[5][(lo >> 16) & 0xff] ^ table[4][lo >> 24] ^
              table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^ table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
    }
    for (; n; p++, n--) reg = table[0][(reg ^ *p) & 0xff] ^ (reg >> 8);
    return reg;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_SSE42_PATH 1
#include <nmmintrin.h>

/*
 * The crc32 instruction takes 3 cycles but can start one per cycle, so one chain of them
 * runs at a third of the speed the CPU allows. From 3 * SHORT_BLOCK bytes on, the data is
 * cut into rounds of three consecutive blocks whose CRCs run as three independent chains,
 * then joined: for a block B of `len` bytes, update(r, B) = shift(r) ^ update(0, B), where
 * shift(r) = update(r, `len` zero bytes) is linear in r, so four 256-entry tables (one per
 * byte of r) apply it. Blocks of 8 KB for long data, 256 bytes for the rest.
 */
#define LONG_BLOCK 8192
#define SHORT_BLOCK 256

static uint32_t shift_long[4][256], shift_short[4][256];

/* Fill shift[k][b] with the register after `len` zero bytes, starting from b << 8k (needs `table`). */
static void init_shift(uint32_t shift[4][256], size_t len) {
    static const unsigned char zeros[SHORT_BLOCK];
    uint32_t bit_shifted[32]; /* by linearity, a register's shift is the XOR of its set bits' shifts */
    for (int i = 0; i < 32; i++) {
        uint32_t reg = (uint32_t)1 << i;
        for (size_t done = 0; done < len; done += SHORT_BLOCK) reg = update_portable(reg, zeros, SHORT_BLOCK);
        bit_shifted[i] = reg;
    }
    for (int k = 0; k < 4; k++)
        for (int b = 0; b < 256; b++) {
            uint32_t reg = 0;
            for (int bit = 0; bit < 8; bit++)
                if ((b >> bit) & 1) reg ^= bit_shifted[8 * k + bit];
            shift[k][b] = reg;
        }
}

static inline uint32_t apply_shift(const uint32_t shift[4][256], uint32_t reg) {
    return shift[0][reg & 0xff] ^ shift[1][(reg >> 8) & 0xff] ^ shift[2][(reg >> 16) & 0xff] ^ shift[3][reg >> 24];
}

static inline uint64_t load64(const unsigned char *p) {
    uint64_t v;
    memcpy(&v, p, sizeof v); /* unaligned load, no aliasing trouble; the instruction wants x86's byte order */
    return v;
}

/* Run the first rounds * 3 * block bytes at p through the register, as three chains of `block` bytes per round. */
__attribute__((target("sse4.2"))) static inline uint64_t update_three_chains(
    uint64_t reg, const unsigned char *p, size_t rounds, size_t block, const uint32_t shift[4][256]) {
    for (; rounds; rounds--, p += 3 * block) {
        uint64_t reg_b = 0, reg_c = 0;
        for (size_t i = 0; i < block; i += 8) {
            reg = _mm_crc32_u64(reg, load64(p + i));
            reg_b = _mm_crc32_u64(reg_b, load64(p + block + i));
            reg_c = _mm_crc32_u64(reg_c, load64(p + 2 * block + i));
        }
        reg = apply_shift(shift, (uint32_t)reg) ^ reg_b;
        reg = apply_shift(shift, (uint32_t)reg) ^ reg_c;
    }
    return reg;
}

__attribute__((target("sse4.2"))) static uint32_t update_sse42(uint32_t reg32, const unsigned char *p, size_t n) {
    uint64_t reg = reg32;
    size_t rounds = n / (3 * LONG_BLOCK);
    reg = update_three_chains(reg, p, rounds, LONG_BLOCK, shift_long);
    p += rounds * 3 * LONG_BLOCK;
    n -= rounds * 3 * LONG_BLOCK;
    rounds = n / (3 * SHORT_BLOCK);
    reg = update_three_chains(reg, p, rounds, SHORT_BLOCK, shift_short);
    p += rounds * 3 * SHORT_BLOCK;
    n -= rounds * 3 * SHORT_BLOCK;
    for (; n >= 8; p += 8, n -= 8) reg = _mm_crc32_u64(reg, load64(p));
    for (; n; p++, n--) reg = _mm_crc32_u8((uint32_t)reg, *p);
    return (uint32_t)reg;
}
#endif

static CrcUpdate crc_update = update_portable; /* the fastest this CPU runs, chosen at import */

/* TFRecord's mask of a finished register: CRC32C's final inversion, rotated right by 15 bits, plus a constant. */
static inline uint32_t mask(uint32_t reg) {
    uint32_t crc = ~reg;
    return ((crc >> 15) | (crc << 17)) + MASK_DELTA; /* wraps mod 2**32 */
}

static inline uint32_t masked_crc(CrcUpdate update, const unsigned char *p, size_t n) {
    return mask(update(0xffffffffu, p, n));
}

/* ------------------------------------------------------------------------------------------------ */
/* The data walked: one buffer, or parts that follow one another. Offsets count from the first
 * part's first byte, as if the parts were one buffer.                                             */

typedef struct {
    Py_buffer *views;  /* the parts */
    Py_ssize_t *ends;  /* ends[k]: the offset just past part k */
    Py_ssize_t count;
    Py_ssize_t size;   /* of all parts together */
} Parts;

/* The part holding byte `at` (< size), looked for from part `from` on: the walk goes forward. */
static inline Py_ssize_t part_of(const Parts *parts, Py_ssize_t at, Py_ssize_t from) {
    while (parts->ends[from] <= at) from++;
    return from;
}

/* Where byte `at` of the whole lies, `at` being in part k. */
static inline const unsigned char *byte_in(const Parts *parts, Py_ssize_t k, Py_ssize_t at) {
    return (const unsigned char *)parts->views[k].buf + (at - (parts->ends[k] - parts->views[k].len));
}

/* The n bytes (n <= 12) at `at`, where they lie if one part holds them all, else gathered into `scratch`. */
static const unsigned char *bytes_at(const Parts *parts, Py_ssize_t *cursor, Py_ssize_t at, Py_ssize_t n,
                                     unsigned char *scratch) {
    Py_ssize_t k = *cursor = part_of(parts, at, *cursor);
    if (at + n <= parts->ends[k]) return byte_in(parts, k, at);
    for (Py_ssize_t done = 0; done < n; k++) {
        Py_ssize_t take = parts->ends[k] - (at + done); /* 0 or less for an empty part */
        if (take > n - done) take = n - done;
        if (take > 0) {
            memcpy(scratch + done, byte_in(parts, k, at + done), (size_t)take);
            done += take;
        }
    }
    return scratch;
}

/* The masked CRC of bytes [at, at + n), which straddle parts, copied to `out` a part at a time. */
static uint32_t masked_crc_copy(CrcUpdate update, const Parts *parts, Py_ssize_t *cursor, Py_ssize_t at,
                                Py_ssize_t n, char *out) {
    uint32_t reg = 0xffffffffu;
    for (Py_ssize_t k = *cursor = part_of(parts, at, *cursor); n > 0; k++) {
        Py_ssize_t take = parts->ends[k] - at;
        if (take > n) take = n;
        if (take <= 0) continue; /* an empty part */
        const unsigned char *p = byte_in(parts, k, at);
        reg = update(reg, p, (size_t)take);
        memcpy(out, p, (size_t)take);
        out += take;
        at += take;
        n -= take;
    }
    return mask(reg);
}

/* ------------------------------------------------------------------------------------------------ */
/* The walk.                                                                                         */

typedef struct {
    Py_ssize_t start, size; /* one record's data in the parts */
} Span;

typedef struct {
    int status;         /* DONE, NEED_MORE, BAD_LENGTH_CRC or BAD_DATA_CRC */
    Py_ssize_t pos;     /* after the last record taken: where the record that stopped the walk starts */
    Py_ssize_t count;   /* records taken, in spans[0..count) */
    int have_header;    /* NEED_MORE: the record's header is whole (and its CRC right), its data is not */
    uint64_t length;    /* the data length in the header at pos, once read (NEED_MORE, BAD_DATA_CRC) */
} Walk;

/*
 * Find up to max_records whole records in the parts from offset pos on whose length CRC is right,
 * noting each one's data in `spans`; the data CRCs are checked later, as each record is copied out
 * (`copy_checked`). Touches no Python object, so it runs without the GIL. A record takes at least
 * HEADER_SIZE + FOOTER_SIZE bytes, so at most (size - pos) / 16 records are found, whatever
 * max_records says: `spans` needs no more entries than that.
 */
static void walk_headers(const Parts *parts, Py_ssize_t pos, Py_ssize_t max_records, Span *spans, Walk *w) {
    CrcUpdate update = crc_update;
    Py_ssize_t size = parts->size, cursor = 0;
    unsigned char scratch[HEADER_SIZE];
    w->status = DONE;
    w->have_header = 0;
    w->length = 0;
    w->count = 0;
    while (w->count < max_records) {
        Py_ssize_t left = size - pos;
        if (left < HEADER_SIZE) {
            w->status = NEED_MORE;
            break;
        }
        const unsigned char *record = bytes_at(parts, &cursor, pos, HEADER_SIZE, scratch);
        if (masked_crc(update, record, 8) != load_le32(record + 8)) {
            w->status = BAD_LENGTH_CRC;
            break;
        }
        w->length = load_le64(record);
        /* Compare, never add: a corrupt length near 2**64 must not wrap an offset around. */
        if (left < HEADER_SIZE + FOOTER_SIZE || w->length > (uint64_t)(left - HEADER_SIZE - FOOTER_SIZE)) {
            w->status = NEED_MORE;
            w->have_header = 1;
            break;
        }
        spans[w->count].start = pos + HEADER_SIZE;
        spans[w->count].size = (Py_ssize_t)w->length;
        w->count++;
        pos += HEADER_SIZE + (Py_ssize_t)w->length + FOOTER_SIZE;
    }
    w->pos = pos;
}

/*
 * Check each found record's data CRC, then copy the data into its bytes object's storage (`out[i]`,
 * allocated for it) while it is still in the cache: the buffer comes from memory once. (A record
 * that straddles parts is copied a part at a time, each piece right after its CRC.) At the first
 * record whose CRC is wrong the walk ends there (BAD_DATA_CRC, the records before it kept). No GIL.
 */
static void copy_checked(const Parts *parts, const Span *spans, char *const *out, Walk *w) {
    CrcUpdate update = crc_update;
    Py_ssize_t cursor = 0;
    unsigned char scratch[FOOTER_SIZE];
    for (Py_ssize_t i = 0; i < w->count; i++) {
        Py_ssize_t start = spans[i].start, length = spans[i].size;
        Py_ssize_t k = cursor = part_of(parts, start, cursor);
        int in_one_part = start + length <= parts->ends[k];
        const unsigned char *record_data = byte_in(parts, k, start);
        uint32_t crc = in_one_part ? masked_crc(update, record_data, (size_t)length)
                                   : masked_crc_copy(update, parts, &cursor, start, length, out[i]);
        if (crc == load_le32(bytes_at(parts, &cursor, start + length, FOOTER_SIZE, scratch))) {
            if (in_one_part) memcpy(out[i], record_data, (size_t)length);
        } else {
            w->status = BAD_DATA_CRC;
            w->have_header = 0;
            w->length = (uint64_t)length;
            w->pos = start - HEADER_SIZE;
            w->count = i;
            return;
        }
    }
}

/* HEADER_SIZE + length + FOOTER_SIZE as a Python int, exact even where a corrupt length takes it past 2**64. */
static PyObject *record_size(uint64_t length) {
    const uint64_t framing = HEADER_SIZE + FOOTER_SIZE;
    if (length <= UINT64_MAX - framing) return PyLong_FromUnsignedLongLong(length + framing);
    PyObject *py_length = PyLong_FromUnsignedLongLong(length);
    PyObject *py_framing = PyLong_FromUnsignedLongLong(framing);
    PyObject *sum = py_length && py_framing ? PyNumber_Add(py_length, py_framing) : NULL;
    Py_XDECREF(py_length);
    Py_XDECREF(py_framing);
    return sum;
}

/* What `split` returns as `detail` (see its docstring). */
static PyObject *walk_detail(const Walk *w) {
    switch (w->status) {
    case NEED_MORE:
        return w->have_header ? record_size(w->length) : PyLong_FromLong(HEADER_SIZE);
    case BAD_DATA_CRC:
        return PyLong_FromUnsignedLongLong(w->length);
    default:
        return PyLong_FromLong(0);
    }
}

PyDoc_STRVAR(split_doc,
"split(buf, pos, max_records) -> (records, new_pos, status, detail)\n"
"\n"
"Walk TFRecord records in the buffer `buf` from offset `pos`, checking both CRCs of each,\n"
"`buf` being one bytes-like object or a list of them that follow one another (offsets then\n"
"count from the first one's start, as if they were joined),\n"
"and return the data of up to `max_records` of them as a list of bytes. `new_pos` is the\n"
"offset after the last record returned; `status` says why the walk stopped there:\n"
"\n"
"DONE: it has `max_records` records (detail 0).\n"
"NEED_MORE: `buf` ends inside the header or the record at new_pos; detail is the number of\n"
"    bytes from new_pos that must be there to go on (12 for the header, else the whole record).\n"
"BAD_LENGTH_CRC: the CRC of the length at new_pos does not match (detail 0).\n"
"BAD_DATA_CRC: the CRC of the data of the record at new_pos does not match; detail is its length.\n"
"\n"
"The walk and the CRCs run with the GIL released.");

/* split's result tuple: records[0..w->count) of `records` (the rest, past a bad record, dropped). */
static PyObject *split_result(PyObject *records, const Walk *w) {
    if (w->count < PyList_GET_SIZE(records) && PyList_SetSlice(records, w->count, PyList_GET_SIZE(records), NULL) < 0) {
        Py_DECREF(records);
        return NULL;
    }
    PyObject *detail = walk_detail(w);
    if (!detail) {
        Py_DECREF(records);
        return NULL;
    }
    return Py_BuildValue("(NniN)", records, w->pos, w->status, detail);
}

/*
 * How far past each new record's start (bytes) the memory that the next allocations will likely take is fetched
 * into the cache (new_records). The allocator carves consecutive records one after another out of the memory
 * freed earlier; each allocation writes the new object's header and the end of its block (the next block's
 * header), and the allocator's lock on the next allocation (the process has threads, so every malloc of over
 * tcache's 1,032 bytes takes the arena lock) waits for those writes to reach the cache. Where that memory is
 * cold (mixing 8 TFRecord sources: the records freed were pulled ~8 batches, ~8 MB, earlier), each allocation
 * waited on a miss in turn: perf of fastinput_bench.mixing's 8-file pipeline put 13% of its samples on malloc's
 * lock against 3% reading one source. Fetched ahead, the misses overlap (malloc back to 3%). Measured over
 * 1,000-batch runs, six rounds interleaved (load 4.7): 2 KiB ahead 358, 4 KiB 343, 8 KiB 339, 16 KiB 333,
 * 32 KiB 344 us of CPU per batch (median) against 377 without. A prefetch never faults: one past the heap, or
 * after a block that came from elsewhere (tcache), costs a wasted fetch only. At most PREFETCH_AHEAD bytes are
 * fetched per record, so a large record (its own block, or a fresh mapping) costs no more than a small one.
 */
#define PREFETCH_AHEAD (8 * 1024)
#define CACHE_LINE 64

/* Fetches [at, at + n) into the cache, for writing, without waiting for it. */
static inline void prefetch_for_write(uintptr_t at, Py_ssize_t n) {
    for (Py_ssize_t offset = 0; offset < n; offset += CACHE_LINE) {
        __builtin_prefetch((const void *)(at + (uintptr_t)offset), 1, 3);
    }
}

/* A list of `count` new bytes objects sized as `spans` say, not filled yet; their storage in `out`. Each
 * allocation fetches the memory PREFETCH_AHEAD bytes on, as large as this record's block (up to PREFETCH_AHEAD),
 * for the ones to come. */
static PyObject *new_records(const Span *spans, Py_ssize_t count, char **out) {
    PyObject *records = PyList_New(count);
    if (!records) return NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *record = PyBytes_FromStringAndSize(NULL, spans[i].size);
        if (!record) {
            Py_DECREF(records);
            return NULL;
        }
        Py_ssize_t block = (Py_ssize_t)offsetof(PyBytesObject, ob_sval) + spans[i].size + 1;
        prefetch_for_write((uintptr_t)record + PREFETCH_AHEAD, block < PREFETCH_AHEAD ? block : PREFETCH_AHEAD);
        out[i] = PyBytes_AS_STRING(record);
        PyList_SET_ITEM(records, i, record);
    }
    return records;
}

/*
 * The walk in three steps, so that the GIL is held only to allocate: find the records (no GIL), make
 * a bytes object of each one's size (GIL), check each record's data CRC and copy it into its object
 * (no GIL, unless there are fewer than RELEASE_GIL_BYTES to copy). The objects are not visible to any
 * other thread until split returns them.
 */
/* The buffers of `buf` (one bytes-like object, or a list of them) as `parts`; -1 with an exception set if one is
 * not bytes-like. Release with release_parts() either way. */
static int get_parts(PyObject *buf, Parts *parts) {
    int is_list = PyList_Check(buf);
    Py_ssize_t count = is_list ? PyList_GET_SIZE(buf) : 1;
    parts->count = parts->size = 0;
    parts->views = PyMem_New(Py_buffer, count ? count : 1);
    parts->ends = PyMem_New(Py_ssize_t, count ? count : 1);
    if (!parts->views || !parts->ends) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t k = 0; k < count; k++) {
        PyObject *item = is_list ? PyList_GET_ITEM(buf, k) : buf;
        if (PyObject_GetBuffer(item, &parts->views[k], PyBUF_SIMPLE) < 0) return -1;
        parts->count = k + 1;
        parts->size += parts->views[k].len;
        parts->ends[k] = parts->size;
    }
    return 0;
}

static void release_parts(Parts *parts) {
    for (Py_ssize_t k = 0; k < parts->count; k++) PyBuffer_Release(&parts->views[k]);
    PyMem_Free(parts->views);
    PyMem_Free(parts->ends);
}

static PyObject *py_split(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *buf;
    Parts parts;
    Py_ssize_t pos, max_records;
    Span *spans = NULL;
    char **out = NULL;
    PyObject *records = NULL;
    Walk w;
    if (!PyArg_ParseTuple(args, "Onn:split", &buf, &pos, &max_records)) return NULL;
    if (get_parts(buf, &parts) < 0) goto done;
    if (pos < 0 || pos > parts.size || max_records < 0) {
        PyErr_Format(PyExc_ValueError, "split: need 0 <= pos <= len(buf) and max_records >= 0, got pos %zd, "
                     "len(buf) %zd, max_records %zd", pos, parts.size, max_records);
        goto done;
    }
    Py_ssize_t capacity = (parts.size - pos) / (HEADER_SIZE + FOOTER_SIZE); /* see walk_headers() */
    if (capacity > max_records) capacity = max_records;
    if (capacity < 1) capacity = 1;
    spans = PyMem_New(Span, capacity);
    out = PyMem_New(char *, capacity);
    if (!spans || !out) {
        PyErr_NoMemory();
        goto done;
    }
    /* An exported buffer cannot be resized or freed while we hold its view, so it is safe to read unlocked. */
    Py_BEGIN_ALLOW_THREADS
    walk_headers(&parts, pos, max_records, spans, &w);
    Py_END_ALLOW_THREADS
    records = new_records(spans, w.count, out);
    if (!records) goto done;
    if (w.pos - pos >= RELEASE_GIL_BYTES) {
        Py_BEGIN_ALLOW_THREADS
        copy_checked(&parts, spans, out, &w);
        Py_END_ALLOW_THREADS
    } else {
        copy_checked(&parts, spans, out, &w);
    }
    records = split_result(records, &w);
done:
    PyMem_Free(spans);
    PyMem_Free(out);
    release_parts(&parts);
    return records;
}

PyDoc_STRVAR(split_spans_doc,
"split_spans(buf, pos, spans) -> (count, new_pos, status, detail)\n"
"\n"
"`split` without objects: the whole records of the one buffer `buf` from offset `pos`, both CRCs of each\n"
"checked, noted as (start, length) pairs of their data in `spans` (a writable, C-contiguous int64 array of\n"
"pairs; as many records as it holds pairs, at most). `count` pairs are written; `new_pos`, `status` and\n"
"`detail` are `split`'s. The walk and the CRCs run with the GIL released (the mix of TFRecord files served\n"
"from spans, fastinput.readers.record_spans).");

static PyObject *py_split_spans(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *buf, *spans_obj, *result = NULL;
    Py_ssize_t pos;
    Py_buffer data, pairs;
    Parts parts;
    Walk w;
    if (!PyArg_ParseTuple(args, "OnO:split_spans", &buf, &pos, &spans_obj)) return NULL;
    if (PyObject_GetBuffer(buf, &data, PyBUF_SIMPLE) < 0) return NULL;
    if (PyObject_GetBuffer(spans_obj, &pairs, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    const char *format = pairs.format ? pairs.format : "B";
    if (*format == '<' || *format == '=' || *format == '@') format++;
    Py_ssize_t capacity = pairs.len / (Py_ssize_t)(2 * sizeof(int64_t));
    Span *spans = NULL;
    if (pairs.itemsize != 8 || (strcmp(format, "l") != 0 && strcmp(format, "q") != 0)) {
        PyErr_Format(PyExc_TypeError, "split_spans: spans must be int64, got format '%s'", format);
        goto done;
    }
    if (pos < 0 || pos > data.len) {
        PyErr_Format(PyExc_ValueError, "split_spans: need 0 <= pos <= len(buf), got pos %zd, len(buf) %zd", pos,
                     data.len);
        goto done;
    }
    spans = PyMem_New(Span, capacity ? capacity : 1);
    if (!spans) {
        PyErr_NoMemory();
        goto done;
    }
    /* one part: the walk's offsets are the buffer's */
    Py_ssize_t end = data.len;
    parts.views = &data;
    parts.ends = &end;
    parts.count = 1;
    parts.size = data.len;
    Py_BEGIN_ALLOW_THREADS
    walk_headers(&parts, pos, capacity, spans, &w);
    CrcUpdate update = crc_update;
    const unsigned char *bytes = (const unsigned char *)data.buf;
    for (Py_ssize_t i = 0; i < w.count; i++) { /* walk_headers checked that each record and its footer fit */
        Py_ssize_t start = spans[i].start, length = spans[i].size;
        if (masked_crc(update, bytes + start, (size_t)length) != load_le32(bytes + start + length)) {
            w.status = BAD_DATA_CRC;
            w.have_header = 0;
            w.length = (uint64_t)length;
            w.pos = start - HEADER_SIZE;
            w.count = i;
            break;
        }
    }
    int64_t *out = (int64_t *)pairs.buf;
    for (Py_ssize_t i = 0; i < w.count; i++) {
        out[2 * i] = (int64_t)spans[i].start;
        out[2 * i + 1] = (int64_t)spans[i].size;
    }
    Py_END_ALLOW_THREADS
    PyObject *detail = walk_detail(&w);
    if (detail) result = Py_BuildValue("(nniN)", w.count, w.pos, w.status, detail);
done:
    PyMem_Free(spans);
    PyBuffer_Release(&pairs);
    PyBuffer_Release(&data);
    return result;
}

PyDoc_STRVAR(masked_crc32c_doc,
"masked_crc32c(data, *, portable=False) -> int\n"
"\n"
"TFRecord's masked CRC32C of `data` (any bytes-like object): the CRC rotated right by 15 bits\n"
"plus 0xa282ead8. portable=True uses the table-driven code even where the CPU has a CRC\n"
"instruction (so that tests check it on any machine).");

static PyObject *py_masked_crc32c(PyObject *self, PyObject *args, PyObject *kwargs) {
    (void)self;
    static char *keywords[] = {"data", "portable", NULL};
    Py_buffer view;
    int portable = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*|$p:masked_crc32c", keywords, &view, &portable))
        return NULL;
    CrcUpdate update = portable ? update_portable : crc_update;
    uint32_t crc;
    if (view.len >= RELEASE_GIL_BYTES) {
        Py_BEGIN_ALLOW_THREADS
        crc = masked_crc(update, view.buf, (size_t)view.len);
        Py_END_ALLOW_THREADS
    } else {
        crc = masked_crc(update, view.buf, (size_t)view.len);
    }
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLong(crc);
}

static PyMethodDef methods[] = {
    {"split", py_split, METH_VARARGS, split_doc},
    {"split_spans", py_split_spans, METH_VARARGS, split_spans_doc},
    {"masked_crc32c", (PyCFunction)(void (*)(void))py_masked_crc32c, METH_VARARGS | METH_KEYWORDS, masked_crc32c_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_records",
    "TFRecord framing (record walk and both CRC32C checks) without the GIL.",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__records(void) {
    const char *implementation = "slicing-by-8";
    init_table();
#ifdef HAVE_SSE42_PATH
    if (__builtin_cpu_supports("sse4.2")) {
        init_shift(shift_long, LONG_BLOCK);
        init_shift(shift_short, SHORT_BLOCK);
        crc_update = update_sse42;
        implementation = "sse4.2";
    }
#endif
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    if (PyModule_AddIntConstant(m, "DONE", DONE) < 0 || PyModule_AddIntConstant(m, "NEED_MORE", NEED_MORE) < 0 ||
        PyModule_AddIntConstant(m, "BAD_LENGTH_CRC", BAD_LENGTH_CRC) < 0 ||
        PyModule_AddIntConstant(m, "BAD_DATA_CRC", BAD_DATA_CRC) < 0 ||
        PyModule_AddStringConstant(m, "CRC32C_IMPLEMENTATION", implementation) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
