/*
 * fastinput.readers._example: parse a batch of serialized tf.train.Example protos into columns, mostly without the GIL.
 *
 * The wire format is walked directly (no protobuf library):
 *
 *     Example  { Features features = 1; }
 *     Features { map<string, Feature> feature = 1; }     (each entry: string key = 1; Feature value = 2;)
 *     Feature  { oneof { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }
 *     List     { repeated <value> value = 1; }           (BytesList etc.; floats and ints packed or not)
 *
 * A call runs in three passes:
 *   1. without the GIL: find every requested feature of every Example, check its type and count its values;
 *   2. with the GIL: allocate the outputs (arrays for numbers, object arrays for strings) and create the
 *      string values (in a batch of DEFERRED_COPY_BATCH_BYTES or more, a long one is allocated only: its bytes
 *      come in pass 3);
 *   3. without the GIL: decode the numbers into their outputs (padding and defaults included) and copy the long
 *      strings' bytes into their objects.
 *
 * With packed=True (the TensorFlow adapter asks for it: TensorFlow wants the bytes, not Python objects), no
 * string object is made: pass 1 also measures every string feature's bytes, pass 2 only allocates one blob
 * (a uint8 array) for them all and their int64 offsets, and pass 3 copies the values into the blob as well.
 *
 * This is the fast path for well-formed batches only. Whatever it does not handle exactly as TensorFlow's
 * ParseExampleV2 does (a missing required feature, a wrong type or count, a duplicate key, an empty Feature,
 * an unknown field, malformed bytes, an item that is not bytes) makes parse() return None, and the caller
 * parses that batch with TensorFlow's kernel, which gives TensorFlow's result or its error.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>

#include <stdint.h>
#include <string.h>

typedef enum { FIXED = 0, VAR = 1, SEQUENCE = 2 } Kind;               /* FixedLen, VarLen, FixedLenSequence */
typedef enum { BYTES_LIST = 1, FLOAT_LIST = 2, INT64_LIST = 3 } ListType; /* the Feature oneof's field numbers */

typedef struct {
    char *key;
    Py_ssize_t key_len;
    Kind kind;
    ListType type;
    Py_ssize_t width;       /* FIXED: values per Example; SEQUENCE: values per item; VAR: unused */
    int has_default;        /* FIXED: a default for Examples without the feature */
    char *fill;             /* numbers: FIXED default (width values) or SEQUENCE padding (one value), raw */
    PyObject *fill_strings; /* strings: FIXED default (tuple of width bytes) or SEQUENCE padding (tuple of one) */
} FeatureSpec;

typedef struct {
    FeatureSpec *features;
    Py_ssize_t count;
    int32_t *table; /* open-addressing hash table of feature indices (-1: empty), size table_mask + 1 */
    uint32_t table_mask;
} Spec;

/* Where one feature's list sits in one Example: its payload and its number of values (NULL: missing). */
typedef struct {
    const uint8_t *list;
    uint32_t list_len;
    uint32_t values;
} Slot;

/* What pass 1 found out about one feature over the whole batch. */
typedef struct {
    Py_ssize_t total;   /* values in all Examples */
    Py_ssize_t longest; /* most values in one Example (SEQUENCE: items) */
} Totals;

#define UNUSUAL 1 /* pass 1 outcome: leave this batch to TensorFlow */

/* ------------------------------------------------------------------------------------------------ */
/* Wire format */

static inline const uint8_t *read_varint(const uint8_t *p, const uint8_t *end, uint64_t *value) {
    uint64_t result = 0;
    for (int shift = 0; shift < 64 && p < end; shift += 7) {
        uint8_t byte = *p++;
        result |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *value = result;
            return p;
        }
    }
    return NULL; /* truncated or longer than 10 bytes */
}

/* A length-delimited field's payload: on success payload and len are set and the end of the field is returned. */
static inline const uint8_t *read_bytes(const uint8_t *p, const uint8_t *end, const uint8_t **payload, uint32_t *len) {
    uint64_t n;
    p = read_varint(p, end, &n);
    if (!p || n > (uint64_t)(end - p) || n > UINT32_MAX) return NULL;
    *payload = p;
    *len = (uint32_t)n;
    return p + n;
}

/* Take the one-byte tag `tag` at *p. TensorFlow's parser compares tags byte for byte in most places (protobuf's
 * ExpectTag): a tag written in more bytes than it needs is a different tag there, so it is one here too. */
static inline int take_tag(const uint8_t **p, const uint8_t *end, uint8_t tag) {
    if (*p >= end || **p != tag) return 0;
    (*p)++;
    return 1;
}

static inline uint32_t hash_key(const uint8_t *key, Py_ssize_t len) { /* FNV-1a */
    uint32_t h = 2166136261u;
    for (Py_ssize_t i = 0; i < len; i++) h = (h ^ key[i]) * 16777619u;
    return h;
}

static inline int32_t find_feature(const Spec *spec, const uint8_t *key, uint32_t len) {
    for (uint32_t i = hash_key(key, len) & spec->table_mask;; i = (i + 1) & spec->table_mask) {
        int32_t f = spec->table[i];
        if (f < 0) return -1;
        const FeatureSpec *fs = &spec->features[f];
        if (fs->key_len == (Py_ssize_t)len && memcmp(fs->key, key, len) == 0) return f;
    }
}

/* Count the values of a list of `type`, checking its encoding. Returns -1 if it is not plain. */
static int64_t count_values(ListType type, const uint8_t *p, const uint8_t *end) {
    int64_t values = 0;
    while (p < end) {
        const uint8_t *payload;
        uint32_t len;
        if (take_tag(&p, end, (1 << 3) | 2)) { /* bytes value, or packed numbers */
            if (!(p = read_bytes(p, end, &payload, &len))) return -1;
            if (type == BYTES_LIST) {
                values += 1;
                continue;
            }
            /* TensorFlow's parser reads numbers packed in several pieces, or packed and unpacked mixed,
             * differently (it keeps the first packed piece): such lists, which no Example writer makes,
             * are left to it. A packed list is the list's only field. */
            if (values || p != end) return -1;
            if (type == FLOAT_LIST) {
                if (len % 4) return -1;
                values = len / 4;
            } else {
                int run = 0; /* continuation bytes in a row: a varint has at most 9 */
                for (uint32_t i = 0; i < len; i++) {
                    if (payload[i] & 0x80) {
                        if (++run > 9) return -1;
                    } else {
                        values++;
                        run = 0;
                    }
                }
                if (run) return -1;
            }
        } else if (type == INT64_LIST && take_tag(&p, end, (1 << 3) | 0)) { /* one unpacked int64 */
            uint64_t value;
            if (!(p = read_varint(p, end, &value))) return -1;
            values += 1;
        } else if (type == FLOAT_LIST && take_tag(&p, end, (1 << 3) | 5)) { /* one unpacked float */
            if (end - p < 4) return -1;
            p += 4;
            values += 1;
        } else {
            return -1;
        }
    }
    return values > UINT32_MAX ? -1 : values;
}

/* One map entry: find the requested feature it holds (if any) and fill its slot. */
static int parse_entry(const Spec *spec, const uint8_t *p, const uint8_t *end, Slot *slots) {
    const uint8_t *key = NULL, *value = NULL;
    uint32_t key_len = 0, value_len = 0;
    while (p < end) {
        uint64_t tag;
        if (!(p = read_varint(p, end, &tag))) return UNUSUAL;
        if (tag == ((1 << 3) | 2) && !key) {
            p = read_bytes(p, end, &key, &key_len);
        } else if (tag == ((2 << 3) | 2) && !value) {
            p = read_bytes(p, end, &value, &value_len);
        } else {
            return UNUSUAL; /* a repeated or unknown field: TensorFlow decides */
        }
        if (!p) return UNUSUAL;
    }
    /* TensorFlow fails an Example with an entry that lacks its key or its value, asked for or not. */
    if (!key || !value) return UNUSUAL;
    int32_t f = find_feature(spec, key, key_len);
    if (f < 0) return 0; /* not asked for */
    if (slots[f].list) return UNUSUAL; /* the key twice */
    /* The Feature: exactly one list, of the spec's type. */
    const uint8_t *q = value, *q_end = value + value_len, *list = NULL;
    uint32_t list_len = 0;
    if (!take_tag(&q, q_end, (uint8_t)(spec->features[f].type << 3 | 2))) return UNUSUAL; /* also: an empty Feature */
    if (!(q = read_bytes(q, q_end, &list, &list_len)) || q != q_end) return UNUSUAL;
    int64_t values = count_values(spec->features[f].type, list, list + list_len);
    if (values < 0) return UNUSUAL;
    slots[f].list = list;
    slots[f].list_len = list_len;
    slots[f].values = (uint32_t)values;
    return 0;
}

static int parse_example(const Spec *spec, const uint8_t *p, const uint8_t *end, Slot *slots) {
    int seen_features = 0;
    while (p < end) {
        const uint8_t *features;
        uint32_t features_len;
        if (seen_features || !take_tag(&p, end, (1 << 3) | 2)) return UNUSUAL;
        if (!(p = read_bytes(p, end, &features, &features_len))) return UNUSUAL;
        seen_features = 1;
        const uint8_t *q = features, *q_end = features + features_len;
        while (q < q_end) {
            const uint8_t *entry;
            uint32_t entry_len;
            if (!take_tag(&q, q_end, (1 << 3) | 2) || !(q = read_bytes(q, q_end, &entry, &entry_len))) return UNUSUAL;
            if (parse_entry(spec, entry, entry + entry_len, slots)) return UNUSUAL;
        }
    }
    return 0;
}

/* Pass 1: locate and count every feature of every Example, and check the counts against the specs. */
static int locate(const Spec *spec, const uint8_t **records, const Py_ssize_t *lengths, Py_ssize_t batch,
                  Slot *slots, Totals *totals) {
    Py_ssize_t nf = spec->count;
    for (Py_ssize_t i = 0; i < batch; i++)
        if (parse_example(spec, records[i], records[i] + lengths[i], slots + i * nf)) return UNUSUAL;
    for (Py_ssize_t f = 0; f < nf; f++) {
        const FeatureSpec *fs = &spec->features[f];
        Totals t = {0, 0};
        for (Py_ssize_t i = 0; i < batch; i++) {
            const Slot *s = &slots[i * nf + f];
            Py_ssize_t n = s->values;
            if (fs->kind == FIXED) {
                if (s->list ? n != fs->width : !fs->has_default) return UNUSUAL;
            } else if (fs->kind == SEQUENCE) {
                if (fs->width == 0 || n % fs->width) return UNUSUAL;
                n /= fs->width;
            }
            t.total += n;
            if (n > t.longest) t.longest = n;
        }
        totals[f] = t;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* Decoding */

/* Decode the numbers of one list into `out` (int64 or float32, as the list's type says). */
static void decode_numbers(ListType type, const uint8_t *p, const uint8_t *end, char *out) {
    int64_t *ints = (int64_t *)out;
    while (p < end) {
        uint64_t tag = 0, v = 0;
        const uint8_t *payload = NULL;
        uint32_t len = 0;
        p = read_varint(p, end, &tag); /* the walk in pass 1 checked every read */
        if ((tag & 7) == 2) {
            p = read_bytes(p, end, &payload, &len);
            if (type == FLOAT_LIST) {
                memcpy(out, payload, len);
                out += len;
            } else {
                for (const uint8_t *q = payload, *q_end = payload + len; q < q_end; *ints++ = (int64_t)v)
                    q = read_varint(q, q_end, &v);
            }
        } else if ((tag & 7) == 0) {
            p = read_varint(p, end, &v);
            *ints++ = (int64_t)v;
        } else {
            memcpy(out, p, 4);
            out += 4;
            p += 4;
        }
    }
}

/* In a batch of DEFERRED_COPY_BATCH_BYTES or more (its records together), strings of DEFERRED_COPY_BYTES or more
 * (encoded images) are allocated with the GIL in pass 2 and filled without it in pass 3. A batch of 64 ImageNet
 * records is 6 MB of copies, with page faults where the heap was given back: ~70 us of CPU a record, 4.5 ms a
 * batch, all of it with the GIL held before; a thread beside such a parser that slept 0.2 ms at a time got the
 * GIL back 0.5-8.6 ms late at the median (p90 11-21 ms), and 0.07-0.09 ms late (p90 0.7-3 ms) with the copies in
 * pass 3 (load 11-12). Shorter strings cost less to copy than to keep for later. A smaller batch (the README's
 * one-record parse, ~10 us of copy) keeps its copies in pass 2: there a longer pass 3 only let the other worker
 * take the GIL for its own Python, which this one then waited out (the README pipeline's workers, one busy core:
 * blocked 12.0% of their time against 10.2%, voluntary switches 0.31-0.52 against 0.30-0.43 per image; 6
 * alternated pairs, load 5-10). */
#define DEFERRED_COPY_BYTES 4096
#define DEFERRED_COPY_BATCH_BYTES (1 << 20)

typedef struct {
    char *to;
    const uint8_t *from;
    size_t len;
} Copy;

/* The string values of one list into `out`; returns where the next value goes, or NULL without memory. With
 * `copies`, a value of DEFERRED_COPY_BYTES or more is allocated only, and its copy appended at *copies: the
 * object is not seen by any other code before pass 3 has filled it. */
static PyObject **decode_strings(const uint8_t *p, const uint8_t *end, PyObject **out, Copy **copies) {
    while (p < end) {
        uint64_t tag = 0;
        const uint8_t *payload = NULL;
        uint32_t len = 0;
        p = read_varint(p, end, &tag);
        p = read_bytes(p, end, &payload, &len);
        int deferred = copies && len >= DEFERRED_COPY_BYTES;
        if (!(*out = PyBytes_FromStringAndSize(deferred ? NULL : (const char *)payload, len))) return NULL;
        if (deferred) *(*copies)++ = (Copy){PyBytes_AS_STRING(*out), payload, len};
        out++;
    }
    return out;
}

/* How many fill values follow Example `s`'s own values: a missing fixed feature's default (`width` values), a
 * sequence's padding up to the batch's longest; none for var-length features. */
static inline Py_ssize_t fill_count(const FeatureSpec *fs, const Totals *t, const Slot *s) {
    if (fs->kind == FIXED) return s->list ? 0 : fs->width;
    if (fs->kind == SEQUENCE) return (t->longest - s->values / fs->width) * fs->width;
    return 0;
}

/* Packed strings: feature f's values (then its defaults or padding) in output order, each appended at blob + at.
 * Writes where each value starts into offsets[0..n-1] and where the last ends into offsets[n]; returns the
 * position after the last value. With blob and offsets NULL it only measures. Needs no GIL: it reads the
 * records and the spec's fill bytes, which the caller holds. */
static Py_ssize_t pack_strings(const FeatureSpec *fs, const Totals *t, const Slot *slots, Py_ssize_t nf,
                               Py_ssize_t batch, char *blob, Py_ssize_t at, int64_t *offsets) {
#define APPEND(data, len)                                          \
    do {                                                           \
        if (offsets) *offsets++ = at;                              \
        if (blob) memcpy(blob + at, (data), (size_t)(len));        \
        at += (len);                                               \
    } while (0)
    for (Py_ssize_t i = 0; i < batch; i++) {
        const Slot *s = &slots[i * nf];
        for (const uint8_t *p = s->list, *end = s->list + s->list_len; s->list && p < end;) {
            uint64_t tag = 0;
            const uint8_t *payload = NULL;
            uint32_t len = 0;
            p = read_varint(p, end, &tag);
            p = read_bytes(p, end, &payload, &len);
            APPEND(payload, len);
        }
        for (Py_ssize_t k = 0, fills = fill_count(fs, t, s); k < fills; k++) {
            PyObject *fill = PyTuple_GET_ITEM(fs->fill_strings, fs->kind == FIXED ? k : 0);
            APPEND(PyBytes_AS_STRING(fill), PyBytes_GET_SIZE(fill));
        }
    }
#undef APPEND
    if (offsets) *offsets = at;
    return at;
}

/* `count` copies of the fill strings (a tuple of `width`, cycled) into `out`; returns where the next goes. */
static PyObject **fill_strings(PyObject *fill, Py_ssize_t width, Py_ssize_t count, PyObject **out) {
    for (Py_ssize_t k = 0; k < count; k++) {
        PyObject *value = PyTuple_GET_ITEM(fill, k % width);
        Py_INCREF(value);
        *out++ = value;
    }
    return out;
}

static inline Py_ssize_t item_size(ListType type) { return type == FLOAT_LIST ? 4 : 8; }

/* Values the output of feature `f` holds: [batch, width] / [values] / [batch, longest, width]. */
static Py_ssize_t output_values(const FeatureSpec *fs, const Totals *t, Py_ssize_t batch) {
    if (fs->kind == FIXED) return batch * fs->width;
    if (fs->kind == VAR) return t->total;
    return batch * t->longest * fs->width;
}

/* Pass 2 for a string feature: every value (and default or padding) into the object array `array`; with
 * `copies`, the long values' copies appended at *copies (at most one per value of the feature). */
static int strings_output(const FeatureSpec *fs, const Totals *t, const Slot *slots, Py_ssize_t nf, Py_ssize_t batch,
                          PyArrayObject *array, Copy **copies) {
    PyObject **out = (PyObject **)PyArray_DATA(array); /* zero-filled by numpy: a failure leaves NULLs behind */
    for (Py_ssize_t i = 0; i < batch; i++) {
        const Slot *s = &slots[i * nf];
        if (s->list && !(out = decode_strings(s->list, s->list + s->list_len, out, copies))) return -1;
        out = fill_strings(fs->fill_strings, fs->kind == FIXED ? fs->width : 1, fill_count(fs, t, s), out);
    }
    return 0;
}

/* Pass 3 for a number feature: every value (and default or padding) into `out`. */
static void numbers_output(const FeatureSpec *fs, const Totals *t, const Slot *slots, Py_ssize_t nf,
                           Py_ssize_t batch, char *out) {
    Py_ssize_t size = item_size(fs->type);
    for (Py_ssize_t i = 0; i < batch; i++) {
        const Slot *s = &slots[i * nf];
        if (s->list) decode_numbers(fs->type, s->list, s->list + s->list_len, out);
        out += s->values * size;
        if (fs->kind == FIXED && !s->list) {
            memcpy(out, fs->fill, fs->width * size);
            out += fs->width * size;
        } else if (fs->kind == SEQUENCE) {
            for (Py_ssize_t k = s->values; k < t->longest * fs->width; k++, out += size) memcpy(out, fs->fill, size);
        }
    }
}

/* ------------------------------------------------------------------------------------------------ */
/* The compiled spec, kept in a capsule */

static void free_spec(Spec *spec) {
    if (!spec) return;
    for (Py_ssize_t f = 0; f < spec->count; f++) {
        PyMem_Free(spec->features[f].key);
        PyMem_Free(spec->features[f].fill);
        Py_XDECREF(spec->features[f].fill_strings);
    }
    PyMem_Free(spec->features);
    PyMem_Free(spec->table);
    PyMem_Free(spec);
}

static void capsule_destructor(PyObject *capsule) { free_spec(PyCapsule_GetPointer(capsule, "fastinput.example_spec")); }

PyDoc_STRVAR(compile_doc,
"compile(features) -> spec\n\n"
"features: a sequence of (key: bytes, kind: 0 fixed / 1 var / 2 sequence, list type: 1 bytes / 2 float /\n"
"3 int64, width: int, fill: None, bytes (raw numbers) or tuple of bytes (strings)). width is the values\n"
"per Example (fixed) or per item (sequence); fill is a fixed feature's default or a sequence's padding.");

static PyObject *py_compile(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *features;
    if (!PyArg_ParseTuple(args, "O", &features)) return NULL;
    PyObject *seq = PySequence_Fast(features, "features must be a sequence");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    Spec *spec = PyMem_Calloc(1, sizeof(Spec));
    uint32_t size = 8;
    while (size < 2 * (uint64_t)n) size <<= 1;
    if (spec) {
        spec->features = PyMem_Calloc(n ? n : 1, sizeof(FeatureSpec));
        spec->table = PyMem_Malloc(size * sizeof(int32_t));
        spec->table_mask = size - 1;
    }
    if (!spec || !spec->features || !spec->table) {
        free_spec(spec);
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    memset(spec->table, 0xff, size * sizeof(int32_t));
    for (Py_ssize_t f = 0; f < n; f++) {
        FeatureSpec *fs = &spec->features[f];
        const char *key;
        Py_ssize_t key_len;
        int kind, type;
        PyObject *fill;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, f), "y#iinO", &key, &key_len, &kind, &type, &fs->width,
                              &fill))
            goto fail;
        spec->count = f + 1;
        fs->kind = (Kind)kind;
        fs->type = (ListType)type;
        fs->key = PyMem_Malloc(key_len ? key_len : 1);
        if (!fs->key) goto fail;
        memcpy(fs->key, key, key_len);
        fs->key_len = key_len;
        if (kind < FIXED || kind > SEQUENCE || type < BYTES_LIST || type > INT64_LIST || fs->width < 0) {
            PyErr_SetString(PyExc_ValueError, "bad feature description");
            goto fail;
        }
        Py_ssize_t fill_values = kind == FIXED ? fs->width : 1;
        if (fill != Py_None && type != BYTES_LIST) {
            if (!PyBytes_Check(fill) || PyBytes_GET_SIZE(fill) != fill_values * item_size(fs->type)) {
                PyErr_SetString(PyExc_ValueError, "a number fill must be bytes of the fill's raw values");
                goto fail;
            }
            fs->fill = PyMem_Malloc(PyBytes_GET_SIZE(fill) + 1);
            if (!fs->fill) goto fail;
            memcpy(fs->fill, PyBytes_AS_STRING(fill), PyBytes_GET_SIZE(fill));
        } else if (fill != Py_None) {
            if (!PyTuple_Check(fill) || PyTuple_GET_SIZE(fill) != fill_values) {
                PyErr_SetString(PyExc_ValueError, "a string fill must be a tuple of the fill's bytes values");
                goto fail;
            }
            Py_INCREF(fill);
            fs->fill_strings = fill;
        }
        /* TensorFlow takes a default of no values for no default: a fixed feature of no values is required. */
        fs->has_default = fill != Py_None && (kind != FIXED || fs->width > 0);
        if (kind == SEQUENCE && fill == Py_None) {
            PyErr_SetString(PyExc_ValueError, "a sequence feature needs its padding value");
            goto fail;
        }
        if (key_len > UINT32_MAX || find_feature(spec, (const uint8_t *)key, (uint32_t)key_len) >= 0) {
            PyErr_SetString(PyExc_ValueError, "duplicate or oversized feature key");
            goto fail;
        }
        uint32_t i = hash_key((const uint8_t *)key, key_len) & spec->table_mask;
        while (spec->table[i] >= 0) i = (i + 1) & spec->table_mask;
        spec->table[i] = (int32_t)f;
    }
    Py_DECREF(seq);
    PyObject *capsule = PyCapsule_New(spec, "fastinput.example_spec", capsule_destructor);
    if (!capsule) free_spec(spec);
    return capsule;
fail:
    Py_DECREF(seq);
    free_spec(spec);
    return NULL;
}

/* ------------------------------------------------------------------------------------------------ */
/* parse() */

PyDoc_STRVAR(parse_doc,
"parse(spec, records, packed=False) -> list or None\n\n"
"records: a list or 1-D object array of bytes. One output per feature, in the spec's order, as flat arrays\n"
"(int64, float32 or object of bytes): fixed -> the values of [batch, width]; var -> (values, int64 value\n"
"counts per Example); sequence -> (the values of [batch, longest, width], longest). None: the batch is not\n"
"one this parser handles exactly as TensorFlow does (see the module's comment); parse it with TensorFlow.\n"
"packed: every string feature's values become (blob, offsets) instead of an object array: value k is\n"
"blob[offsets[k]:offsets[k + 1]] (blob a uint8 array, offsets int64 with one more entry than values); all\n"
"features share the blob.");

/* Point *items at the records' items (*batch of them); 0 if `records` is neither a list nor a 1-D object array. */
static int record_items(PyObject *records, PyObject ***items, Py_ssize_t *batch) {
    if (PyList_CheckExact(records)) {
        *batch = PyList_GET_SIZE(records);
        *items = ((PyListObject *)records)->ob_item;
        return 1;
    }
    if (PyArray_CheckExact(records)) {
        PyArrayObject *array = (PyArrayObject *)records;
        if (PyArray_NDIM(array) == 1 && PyArray_TYPE(array) == NPY_OBJECT && PyArray_ISCARRAY_RO(array)) {
            *batch = PyArray_DIM(array, 0);
            *items = (PyObject **)PyArray_DATA(array);
            return 1;
        }
    }
    return 0;
}

/* Slot tables are large (batch x features x 16 bytes: 640 KB for 1024 Examples of 40 features), and malloc
 * hands blocks that size out as fresh pages from the kernel, faulted in on every call; a few are kept for reuse.
 * Taken and given back with the GIL held, which guards the cache. */
#define CACHED_SLOT_TABLES 4
static struct { Slot *table; size_t count; } slot_cache[CACHED_SLOT_TABLES];

static Slot *take_slots(size_t count) {
    for (int i = 0; i < CACHED_SLOT_TABLES; i++) {
        if (slot_cache[i].table && slot_cache[i].count >= count) {
            Slot *table = slot_cache[i].table;
            slot_cache[i].table = NULL;
            memset(table, 0, count * sizeof(Slot));
            return table;
        }
    }
    return PyMem_Calloc(count, sizeof(Slot));
}

static void give_back_slots(Slot *table, size_t count) {
    if (!table) return;
    for (int i = 0; i < CACHED_SLOT_TABLES; i++) {
        if (!slot_cache[i].table) {
            slot_cache[i].table = table;
            slot_cache[i].count = count;
            return;
        }
    }
    PyMem_Free(table);
}

static int npy_type(ListType type) { return type == BYTES_LIST ? NPY_OBJECT : type == FLOAT_LIST ? NPY_FLOAT32 : NPY_INT64; }

static PyObject *new_vector(Py_ssize_t n, int type) {
    npy_intp dims[1] = {(npy_intp)n};
    return PyArray_SimpleNew(1, dims, type);
}

/* The numeric outputs of one dtype (or the packed strings' offsets) are carved one after another out of one
 * 64-byte aligned buffer: as_tf_dataset hands such adjacent outputs to TensorFlow as one tensor without
 * copying them together, and a batch costs one allocation per dtype rather than one per feature. */
#define POOL_ALIGNMENT 64

typedef struct {
    PyObject *owner; /* a uint8 array holding the buffer; each output is a view with it as base */
    char *next;      /* where the next output starts */
} Pool;

static int pool_open(Pool *pool, Py_ssize_t bytes) {
    if (!(pool->owner = new_vector(bytes + POOL_ALIGNMENT, NPY_UINT8))) return -1;
    char *data = PyArray_DATA((PyArrayObject *)pool->owner);
    pool->next = data + (POOL_ALIGNMENT - (uintptr_t)data % POOL_ALIGNMENT) % POOL_ALIGNMENT;
    return 0;
}

/* The next n values of the pool as a 1-D array of `type`, or NULL with an exception set. */
static PyObject *pool_take(Pool *pool, Py_ssize_t n, int type) {
    npy_intp dims[1] = {(npy_intp)n};
    PyObject *view = PyArray_NewFromDescr(&PyArray_Type, PyArray_DescrFromType(type), 1, dims, NULL, pool->next,
                                          NPY_ARRAY_CARRAY, NULL);
    if (!view) return NULL;
    Py_INCREF(pool->owner);
    if (PyArray_SetBaseObject((PyArrayObject *)view, pool->owner) < 0) { /* it drops the reference it was given */
        Py_DECREF(view);
        return NULL;
    }
    pool->next += n * PyArray_ITEMSIZE((PyArrayObject *)view);
    return view;
}

enum { POOL_INT64, POOL_FLOAT32, POOL_OFFSETS, POOLS };

/* The pool feature fs's output comes from: its numbers', its offsets' when strings are packed; -1: none (an
 * object array of strings). */
static int output_pool(const FeatureSpec *fs, int packed) {
    if (fs->type == INT64_LIST) return POOL_INT64;
    if (fs->type == FLOAT_LIST) return POOL_FLOAT32;
    return packed ? POOL_OFFSETS : -1;
}

/* parse lets go of the GIL for its passes over a batch of this many records or more. A pass over fewer takes a few
 * microseconds (the README's one-record parse_example: ~3 us), less than handing the GIL over costs: the thread waits to
 * take it back from another thread's Python, and wakes a thread waiting for it. Measured on the README image pipeline
 * (2 workers, 2 cores, quiet): voluntary switches 0.57-0.60 -> 0.36-0.41 per image. */
#define RELEASE_GIL_RECORDS 16

static PyObject *py_parse(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *capsule, *records;
    int packed = 0;
    if (!PyArg_ParseTuple(args, "OO|p", &capsule, &records, &packed)) return NULL;
    const Spec *spec = PyCapsule_GetPointer(capsule, "fastinput.example_spec");
    if (!spec) return NULL;
    Py_ssize_t batch = 0, nf = spec->count;
    PyObject **items = NULL;
    if (!record_items(records, &items, &batch)) Py_RETURN_NONE;
    for (Py_ssize_t i = 0; i < batch; i++)
        if (!items[i] || !PyBytes_CheckExact(items[i])) Py_RETURN_NONE;

    /* Hold every record while the GIL is released: the list itself could change meanwhile. */
    PyObject **held = PyMem_Malloc((batch ? batch : 1) * sizeof(PyObject *));
    const uint8_t **data = PyMem_Malloc((batch ? batch : 1) * sizeof(uint8_t *));
    Py_ssize_t *lengths = PyMem_Malloc((batch ? batch : 1) * sizeof(Py_ssize_t));
    size_t slot_count = batch > 0 && nf > 0 ? (size_t)(batch * nf) : 1;
    Slot *slots = take_slots(slot_count);
    Totals *totals = PyMem_Calloc(nf ? nf : 1, sizeof(Totals));
    char **numbers = PyMem_Calloc(nf ? nf : 1, sizeof(char *));
    int64_t **offsets = PyMem_Calloc(nf ? nf : 1, sizeof(int64_t *)); /* packed: each string feature's offsets */
    PyObject *outputs = NULL, *result = NULL, *blob = NULL;
    Copy *copies = NULL; /* the long strings' copies, made in pass 3 in a large batch (see DEFERRED_COPY_BYTES) */
    Py_ssize_t record_bytes = 0;
    Pool pools[POOLS] = {{0}};
    if (!held || !data || !lengths || !slots || !totals || !numbers || !offsets) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < batch; i++) {
        held[i] = items[i];
        Py_INCREF(held[i]);
        data[i] = (const uint8_t *)PyBytes_AS_STRING(held[i]);
        lengths[i] = PyBytes_GET_SIZE(held[i]);
        record_bytes += lengths[i];
    }

    int status;
    Py_ssize_t blob_size = 0;
    PyThreadState *unlocked = batch >= RELEASE_GIL_RECORDS ? PyEval_SaveThread() : NULL;
    status = locate(spec, data, lengths, batch, slots, totals);
    for (Py_ssize_t f = 0; packed && status != UNUSUAL && f < nf; f++)
        if (spec->features[f].type == BYTES_LIST)
            blob_size = pack_strings(&spec->features[f], &totals[f], slots + f, nf, batch, NULL, blob_size, NULL);
    if (unlocked) PyEval_RestoreThread(unlocked);
    if (status == UNUSUAL) {
        result = Py_None;
        Py_INCREF(result);
        goto release;
    }
    /* A writable uint8 array, not bytes: as_tf_dataset hands it to TensorFlow through DLPack, without a copy. */
    if (packed && !(blob = new_vector(blob_size, NPY_UINT8))) goto release;
    Py_ssize_t string_values = 0; /* an upper bound on the deferred copies: every string value of the batch */
    for (Py_ssize_t f = 0; !packed && record_bytes >= DEFERRED_COPY_BATCH_BYTES && f < nf; f++)
        if (spec->features[f].type == BYTES_LIST) string_values += output_values(&spec->features[f], &totals[f], batch);
    if (string_values && !(copies = PyMem_New(Copy, string_values))) {
        PyErr_NoMemory();
        goto release;
    }
    Copy *copies_end = copies, **deferred = copies ? &copies_end : NULL; /* NULL: every copy made in pass 2 */
    Py_ssize_t pool_bytes[POOLS] = {-1, -1, -1}; /* -1: no output from this pool */
    for (Py_ssize_t f = 0; f < nf; f++) {
        const FeatureSpec *fs = &spec->features[f];
        Py_ssize_t n = output_values(fs, &totals[f], batch);
        int p = output_pool(fs, packed);
        if (p >= 0)
            pool_bytes[p] = (pool_bytes[p] < 0 ? 0 : pool_bytes[p]) + (p == POOL_OFFSETS ? (n + 1) * 8 : n * item_size(fs->type));
    }
    for (int p = 0; p < POOLS; p++)
        if (pool_bytes[p] >= 0 && pool_open(&pools[p], pool_bytes[p]) < 0) goto release;

    if (!(outputs = PyList_New(nf))) goto release;
    for (Py_ssize_t f = 0; f < nf; f++) {
        const FeatureSpec *fs = &spec->features[f];
        Py_ssize_t n = output_values(fs, &totals[f], batch);
        PyObject *values, *output = NULL;
        int p = output_pool(fs, packed);
        if (p == POOL_OFFSETS) {
            PyObject *ends = pool_take(&pools[p], n + 1, NPY_INT64);
            if (!ends) goto release;
            offsets[f] = PyArray_DATA((PyArrayObject *)ends);
            values = Py_BuildValue("(ON)", blob, ends);
        } else {
            values = p < 0 ? new_vector(n, NPY_OBJECT) : pool_take(&pools[p], n, npy_type(fs->type));
        }
        if (!values) goto release;
        if (fs->type != BYTES_LIST) {
            numbers[f] = PyArray_DATA((PyArrayObject *)values);
        } else if (!packed &&
                   strings_output(fs, &totals[f], slots + f, nf, batch, (PyArrayObject *)values, deferred) < 0) {
            Py_DECREF(values);
            goto release;
        }
        if (fs->kind == FIXED) {
            output = values;
        } else if (fs->kind == VAR) {
            PyObject *counts = new_vector(batch, NPY_INT64);
            if (counts) {
                int64_t *c = PyArray_DATA((PyArrayObject *)counts);
                for (Py_ssize_t i = 0; i < batch; i++) c[i] = slots[i * nf + f].values;
            }
            output = counts ? Py_BuildValue("(NN)", values, counts) : NULL;
            if (!counts) Py_DECREF(values);
        } else {
            output = Py_BuildValue("(Nn)", values, totals[f].longest);
        }
        if (!output) goto release;
        PyList_SET_ITEM(outputs, f, output);
    }

    unlocked = batch >= RELEASE_GIL_RECORDS || copies ? PyEval_SaveThread() : NULL;
    Py_ssize_t at = 0;
    for (Py_ssize_t f = 0; f < nf; f++) {
        if (numbers[f]) numbers_output(&spec->features[f], &totals[f], slots + f, nf, batch, numbers[f]);
        if (offsets[f])
            at = pack_strings(&spec->features[f], &totals[f], slots + f, nf, batch, PyArray_DATA((PyArrayObject *)blob),
                              at, offsets[f]);
    }
    for (const Copy *c = copies; c < copies_end; c++) memcpy(c->to, c->from, c->len);
    if (unlocked) PyEval_RestoreThread(unlocked);
    result = outputs;
    outputs = NULL;

release:
    for (Py_ssize_t i = 0; i < batch; i++) Py_DECREF(held[i]);
done:
    Py_XDECREF(outputs);
    Py_XDECREF(blob);
    for (int p = 0; p < POOLS; p++) Py_XDECREF(pools[p].owner);
    PyMem_Free(held);
    PyMem_Free(data);
    PyMem_Free(lengths);
    give_back_slots(slots, slot_count);
    PyMem_Free(totals);
    PyMem_Free(numbers);
    PyMem_Free(offsets);
    PyMem_Free(copies);
    return result;
}

static PyMethodDef methods[] = {
    {"compile", py_compile, METH_VARARGS, compile_doc},
    {"parse", py_parse, METH_VARARGS, parse_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_example",
    "tf.train.Example batches parsed into columns (the well-formed fast path; TensorFlow's kernel does the rest).",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__example(void) {
    import_array();
    return PyModule_Create(&module);
}
