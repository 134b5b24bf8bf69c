/*
 * fastinput.fused_ops._jpeg: decode only a crop of a JPEG and resize it, in one pass, without the GIL.
 *
 * libjpeg-turbo decodes only the crop's columns (jpeg_crop_scanline) and skips
 * the rows above it without the inverse DCT (jpeg_skip_scanlines); decoding
 * stops after the crop's last row. Each decoded row is resampled horizontally
 * once, straight from its uint8 pixels into one of two float rows; every output
 * row is then a vertical blend of those two, written (flipped or not) straight
 * into the caller's buffer.
 * So the crop is never stored whole and the working set stays in L1.
 *
 * The arithmetic follows TensorFlow, so results match
 * tf.image.resize(tf.io.decode_and_crop_jpeg(jpeg, window, channels=3), size, "bilinear"):
 * the same libjpeg settings as TF's defaults (integer-fast IDCT, fancy
 * upsampling), TF's CMYK conversion, and TF's half-pixel-centre bilinear
 * weights computed in float32 in the same order.
 *
 * Errors never end the process: libjpeg's fatal errors longjmp back here and
 * become fastinput.errors.InvalidArgumentError (not a JPEG, bad window) or
 * DataLossError (corrupt or truncated data, with the byte offset).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h> /* jpeglib.h needs FILE */
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

#include "numpy/random/bitgen.h"

#ifdef __SSE2__
#include <immintrin.h>
#endif

/* x86-64 Linux with GCC or clang >= 14: the hot loops also get an AVX2 version, picked at run time
 * where the CPU has AVX2 (target_clones needs the loader's ifunc support, hence Linux). */
#if defined(__x86_64__) && defined(__linux__) && (defined(__clang__) ? __clang_major__ >= 14 : defined(__GNUC__))
#define AVX2_VERSIONS 1
#endif

#if !defined(LIBJPEG_TURBO_VERSION_NUMBER) || LIBJPEG_TURBO_VERSION_NUMBER < 1005000
#error "fastinput's JPEG kernel needs libjpeg-turbo >= 1.5 (jpeg_crop_scanline, jpeg_skip_scanlines)"
#endif

/* TF refuses images of 2^29 samples or more; so do we (it also keeps every size in int range). */
#define MAX_SAMPLES (1LL << 29)

static PyObject *InvalidArgumentError; /* fastinput.errors.InvalidArgumentError */
static PyObject *DataLossError;        /* fastinput.errors.DataLossError */

/* ------------------------------------------------------------------------------------------------ */
/* Errors: a libjpeg error manager that jumps back instead of calling exit(), and the error report. */

typedef enum { OK = 0, BAD_ARGUMENT, DATA_LOSS, NO_MEMORY } Status;

typedef struct {
    Status status;
    long offset;                     /* byte of the input where decoding stopped (DATA_LOSS), else -1 */
    char message[JMSG_LENGTH_MAX + 64];
} Report;

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
} ErrorManager;

static void error_exit(j_common_ptr cinfo) {
    ErrorManager *err = (ErrorManager *)cinfo->err;
    longjmp(err->jump, 1);
}

/* Warnings (corrupt but recoverable data) are not printed: TF decodes such files without a word too. */
static void output_message(j_common_ptr cinfo) { (void)cinfo; }

/* Fill `report` from libjpeg's last error. */
static void report_jpeg_error(Report *report, j_decompress_ptr cinfo, const unsigned char *data) {
    char text[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)((j_common_ptr)cinfo, text);
    if (cinfo->err->msg_code == JERR_NO_SOI) {
        report->status = BAD_ARGUMENT;
        snprintf(report->message, sizeof report->message, "not a JPEG image (%s)", text);
        return;
    }
    report->status = cinfo->err->msg_code == JERR_OUT_OF_MEMORY ? NO_MEMORY : DATA_LOSS;
    report->offset = cinfo->src ? (long)(cinfo->src->next_input_byte - data) : -1;
    snprintf(report->message, sizeof report->message, "corrupt or truncated JPEG data: %s", text);
}

static void report_error(Report *report, Status status, const char *message) {
    report->status = status;
    snprintf(report->message, sizeof report->message, "%s", message);
}

/* Raise the Python exception a failed report stands for; returns NULL for the caller to return. */
static PyObject *raise_report(const Report *report, Py_ssize_t size) {
    if (report->status == NO_MEMORY) return PyErr_NoMemory();
    if (report->status == BAD_ARGUMENT) {
        PyErr_SetString(InvalidArgumentError, report->message);
        return NULL;
    }
    PyObject *message = PyUnicode_FromFormat("%s (at byte %ld of %zd)", report->message, report->offset, size);
    PyObject *args = message ? PyTuple_Pack(1, message) : NULL;
    PyObject *kwargs = Py_BuildValue("{s:l}", "offset", report->offset);
    if (args && kwargs) {
        PyObject *exc = PyObject_Call(DataLossError, args, kwargs);
        if (exc) {
            PyErr_SetObject(DataLossError, exc);
            Py_DECREF(exc);
        }
    }
    Py_XDECREF(message);
    Py_XDECREF(args);
    Py_XDECREF(kwargs);
    return NULL;
}

/* ------------------------------------------------------------------------------------------------ */
/* Input: a memory source whose end is an error (a truncated JPEG fails, as in TF), not a fake EOI. */

static void source_noop(j_decompress_ptr cinfo) { (void)cinfo; }

static boolean source_fill(j_decompress_ptr cinfo) {
    ERREXIT(cinfo, JERR_INPUT_EOF);
    return FALSE;
}

static void source_skip(j_decompress_ptr cinfo, long count) {
    struct jpeg_source_mgr *src = cinfo->src;
    if (count <= 0) return;
    if ((size_t)count > src->bytes_in_buffer) ERREXIT(cinfo, JERR_INPUT_EOF);
    src->next_input_byte += count;
    src->bytes_in_buffer -= (size_t)count;
}

static void set_source(j_decompress_ptr cinfo, struct jpeg_source_mgr *src, const unsigned char *data,
                       size_t size) {
    src->next_input_byte = data;
    src->bytes_in_buffer = size;
    src->init_source = source_noop;
    src->fill_input_buffer = source_fill;
    src->skip_input_data = source_skip;
    src->resync_to_restart = jpeg_resync_to_restart;
    src->term_source = source_noop;
    cinfo->src = src;
}

/* ------------------------------------------------------------------------------------------------ */
/* The fused kernel. */

/* Bilinear sampling positions of one axis: output i reads inputs lower[i] and upper[i], weight lerp[i]. */
typedef struct {
    int *lower;
    int *upper;
    float *lerp;
} Axis;

/* One decode: what the caller asks for, and every buffer the decode allocates (freed by job_free). */
typedef struct {
    /* in */
    const unsigned char *data;
    size_t size;
    int crop_y, crop_x, crop_h, crop_w; /* crop_h == 0: the whole image */
    int out_h, out_w;
    int flip;
    int out_float; /* 1: float32 output, 0: uint8 */
    void *out;
    /* owned buffers (each one element longer than its rows: see resample_row) */
    JSAMPLE *scanline_memory; /* holds `scanline`, one byte in (see where it is allocated) */
    JSAMPLE *scanline;  /* one decoded row, as libjpeg delivers it (RGB, or CMYK) */
    uint8_t *rgb;       /* CMYK only: the crop's columns of that row converted to RGB */
    float *rows[2];     /* horizontally resampled rows, indexed by source row parity */
    Axis ax, ay;
} Job;

static void job_free(Job *job) {
    free(job->scanline_memory);
    free(job->rgb);
    free(job->rows[0]);
    free(job->rows[1]);
    free(job->ax.lower); free(job->ax.upper); free(job->ax.lerp);
    free(job->ay.lower); free(job->ay.upper); free(job->ay.lerp);
}

static int axis_alloc(Axis *axis, int n) {
    axis->lower = malloc(sizeof(int) * (size_t)n);
    axis->upper = malloc(sizeof(int) * (size_t)n);
    axis->lerp = malloc(sizeof(float) * (size_t)n);
    return axis->lower && axis->upper && axis->lerp;
}

/* TF's half-pixel-centre weights: in = (i + 0.5) * (in_size / out_size) - 0.5, in float32. */
static void axis_weights(Axis *axis, int out_size, int in_size) {
    const float scale = (float)in_size / (float)out_size;
    for (int i = 0; i < out_size; i++) {
        const float in = ((float)i + 0.5f) * scale - 0.5f;
        const float in_floor = floorf(in);
        const int lower = (int)in_floor;
        const int upper = (int)ceilf(in);
        axis->lower[i] = lower < 0 ? 0 : lower;
        axis->upper[i] = upper > in_size - 1 ? in_size - 1 : upper;
        axis->lerp[i] = in - in_floor;
    }
}

/* The crop's `width` pixels of a decoded CMYK row as RGB, converted as TF does it (integer
 * arithmetic; Adobe files store CMYK inverted). */
static void cmyk_to_rgb(const JSAMPLE *restrict row, int inverted, int width, uint8_t *restrict dst) {
    for (int i = 0; i < width; i++, row += 4, dst += 3) {
        const int c = row[0], m = row[1], y = row[2], k = row[3];
        if (inverted) {
            dst[0] = (uint8_t)(k * c / 255);
            dst[1] = (uint8_t)(k * m / 255);
            dst[2] = (uint8_t)(k * y / 255);
        } else {
            dst[0] = (uint8_t)((255 - k) * (255 - c) / 255);
            dst[1] = (uint8_t)((255 - k) * (255 - m) / 255);
            dst[2] = (uint8_t)((255 - k) * (255 - y) / 255);
        }
    }
}

/* A horizontal resample (see resample_row). */
typedef void (*ResampleRow)(const uint8_t *restrict row, const int *restrict lower, const int *restrict upper,
                            const float *restrict lerps, int out_w, float *restrict dst);

#ifdef __SSE2__
/* A pixel's 3 bytes and the byte after them, in the low lane of a vector. */
static inline __m128i load_pixel(const uint8_t *pixel) {
    uint32_t bytes;
    memcpy(&bytes, pixel, 4);
    return _mm_cvtsi32_si128((int)bytes);
}
#endif

/* Resample one RGB row horizontally into out_w x 3 floats: output x is left + (right - left) * lerp
 * per channel, left and right the row's pixels at byte offsets lower[x] and upper[x] (3 * column,
 * flip included), read straight from the uint8 row, so only the two pixels each output reads are
 * converted to float, not every pixel of the crop. With SSE2 a pixel is one 4-lane vector whose
 * 4th lane (the next byte of the row, or the padding byte after it) is computed and then
 * overwritten by the next pixel's store, or lands in the element after dst's last: both `row` and
 * `dst` have one element of room past their ends. Each lane does the scalar version's float32
 * operations in the same order, so the results are the same, bit for bit. */
static void resample_row(const uint8_t *restrict row, const int *restrict lower, const int *restrict upper,
                         const float *restrict lerps, int out_w, float *restrict dst) {
#ifdef __SSE2__
    const __m128i zero = _mm_setzero_si128();
    for (int x = 0; x < out_w; x++, dst += 3) {
        const __m128i both = _mm_unpacklo_epi8(_mm_unpacklo_epi32(load_pixel(row + lower[x]),
                                                                  load_pixel(row + upper[x])), zero);
        const __m128 left = _mm_cvtepi32_ps(_mm_unpacklo_epi16(both, zero));
        const __m128 right = _mm_cvtepi32_ps(_mm_unpackhi_epi16(both, zero));
        _mm_storeu_ps(dst, _mm_add_ps(left, _mm_mul_ps(_mm_sub_ps(right, left), _mm_set1_ps(lerps[x]))));
    }
#else
    for (int x = 0; x < out_w; x++, dst += 3) {
        const uint8_t *left = row + lower[x], *right = row + upper[x];
        const float lerp = lerps[x];
        for (int c = 0; c < 3; c++) {
            const float l = (float)left[c];
            dst[c] = l + ((float)right[c] - l) * lerp;
        }
    }
#endif
}

#ifdef AVX2_VERSIONS
/* resample_row two pixels at a time, one per 128-bit half of a 256-bit vector (odd out_w: the last
 * pixel by resample_row). The same lanes, operations and order, so the same results. */
__attribute__((target("avx2")))
static void resample_row_avx2(const uint8_t *restrict row, const int *restrict lower, const int *restrict upper,
                              const float *restrict lerps, int out_w, float *restrict dst) {
    const __m256i halves = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
    int x = 0;
    for (; x + 2 <= out_w; x += 2, dst += 6) {
        const __m128i left_bytes = _mm_unpacklo_epi32(load_pixel(row + lower[x]), load_pixel(row + lower[x + 1]));
        const __m128i right_bytes = _mm_unpacklo_epi32(load_pixel(row + upper[x]), load_pixel(row + upper[x + 1]));
        const __m256 left = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(left_bytes));
        const __m256 right = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(right_bytes));
        const __m128 two_lerps = _mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)(lerps + x)));
        const __m256 lerp = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(two_lerps), halves);
        const __m256 v = _mm256_add_ps(left, _mm256_mul_ps(_mm256_sub_ps(right, left), lerp));
        _mm_storeu_ps(dst, _mm256_castps256_ps128(v));
        _mm_storeu_ps(dst + 3, _mm256_extractf128_ps(v, 1));
    }
    if (x < out_w) resample_row(row, lower + x, upper + x, lerps + x, out_w - x, dst);
}
#endif

/* The resample_row version run_job calls: AVX2's where the CPU has it (set by the module's init). */
static ResampleRow resample = resample_row;

/* The blends below are plain loops for the compiler to vectorise: kept out of line (inlined into
 * run_job they were left scalar) and, with AVX2_VERSIONS, also compiled for AVX2 (8 lanes instead of
 * SSE2's 4), the version picked when the process loads. Every lane does the scalar loop's float32
 * operations in the same order (no FMA: -ffp-contract=off), so the results do not depend on which runs. */
#ifdef AVX2_VERSIONS
#define VECTOR_LOOP __attribute__((noinline, target_clones("avx2", "default")))
#else
#define VECTOR_LOOP __attribute__((noinline))
#endif

/* Blend two resampled rows (n floats each) into one output row of float32. */
VECTOR_LOOP static void blend_float(const float *restrict top, const float *restrict bottom, float lerp, int n,
                        float *restrict out) {
    for (int i = 0; i < n; i++) out[i] = top[i] + (bottom[i] - top[i]) * lerp;
}

/* The same into uint8, rounded to nearest, ties to even (as tf.round). Adding then subtracting
 * 1.5 * 2^23 rounds a float in [0, 2^22) that way in two vectorisable additions, where lrintf
 * would be a library call per value. No clamp is needed: a float lerp between two values in
 * [0, 255] with weight in [0, 1) never leaves the interval between them. */
VECTOR_LOOP static void blend_uint8(const float *restrict top, const float *restrict bottom, float lerp, int n,
                        uint8_t *restrict out) {
    const float magic = 12582912.0f;
    for (int i = 0; i < n; i++) {
        const float v = top[i] + (bottom[i] - top[i]) * lerp;
        out[i] = (uint8_t)(int)((v + magic) - magic);
    }
}

/*
 * Decode job->data's crop window and resize it into job->out. Runs without the GIL.
 * On failure fills `report`; the caller frees the job's buffers either way.
 */
static void run_job(Job *job, Report *report) {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_source_mgr source;
    ErrorManager err;

    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = error_exit;
    err.pub.output_message = output_message;
    if (setjmp(err.jump)) {
        report_jpeg_error(report, &cinfo, job->data);
        jpeg_destroy_decompress(&cinfo);
        return;
    }
    jpeg_create_decompress(&cinfo);
    set_source(&cinfo, &source, job->data, job->size);
    jpeg_read_header(&cinfo, TRUE);

    const int width = (int)cinfo.image_width, height = (int)cinfo.image_height;
    if ((long long)width * height * 3 >= MAX_SAMPLES) {
        report_error(report, BAD_ARGUMENT, "JPEG image too large to decode");
        jpeg_destroy_decompress(&cinfo);
        return;
    }
    if (job->crop_h == 0) {
        job->crop_y = job->crop_x = 0;
        job->crop_h = height;
        job->crop_w = width;
    }
    if (job->crop_y < 0 || job->crop_x < 0 || job->crop_h <= 0 || job->crop_w <= 0 ||
        job->crop_h > height - job->crop_y || job->crop_w > width - job->crop_x) { /* no overflow */
        snprintf(report->message, sizeof report->message,
                 "crop window (y=%d, x=%d, height=%d, width=%d) is not inside the %dx%d image",
                 job->crop_y, job->crop_x, job->crop_h, job->crop_w, height, width);
        report->status = BAD_ARGUMENT;
        jpeg_destroy_decompress(&cinfo);
        return;
    }

    /* TF's defaults for channels=3: RGB out (grayscale is expanded), CMYK converted by hand below. */
    const int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    cinfo.dct_method = JDCT_IFAST;
    cinfo.do_fancy_upsampling = TRUE;
    jpeg_start_decompress(&cinfo);

    /* Decode only the crop's columns: libjpeg widens them to whole iMCUs, so note where ours start. */
    JDIMENSION x_start = (JDIMENSION)job->crop_x, x_width = (JDIMENSION)job->crop_w;
    if (job->crop_w < width) jpeg_crop_scanline(&cinfo, &x_start, &x_width);
    const int column_offset = job->crop_x - (int)x_start;

    const int channels = cmyk ? 4 : 3;
    const size_t scanline_size = (size_t)cinfo.output_width * channels;
    /* libjpeg-turbo's SIMD colour conversion writes a row that starts on a 16 (SSE2) or 32 (AVX2) byte
     * boundary with non-temporal stores, which bypass the cache, so reading the row back would miss the
     * cache on every line of it (measured: a third of the kernel's own time). A row one byte past the boundary is
     * written with ordinary stores and read back from L1. */
    job->scanline_memory = malloc(scanline_size + 2);
    job->scanline = job->scanline_memory ? job->scanline_memory + 1 : NULL;
    job->rgb = cmyk ? malloc(3 * (size_t)job->crop_w + 1) : NULL;
    job->rows[0] = malloc(sizeof(float) * (3 * (size_t)job->out_w + 1));
    job->rows[1] = malloc(sizeof(float) * (3 * (size_t)job->out_w + 1));
    if (!job->scanline || (cmyk && !job->rgb) || !job->rows[0] || !job->rows[1] ||
        !axis_alloc(&job->ax, job->out_w) || !axis_alloc(&job->ay, job->out_h)) {
        report_error(report, NO_MEMORY, "out of memory");
        jpeg_destroy_decompress(&cinfo);
        return;
    }
    job->scanline[scanline_size] = 0; /* the padding byte resample_row may read (and discard) */
    if (cmyk) job->rgb[3 * (size_t)job->crop_w] = 0;
    axis_weights(&job->ax, job->out_w, job->crop_w);
    axis_weights(&job->ay, job->out_h, job->crop_h);
    for (int x = 0; x < job->out_w; x++) { /* columns -> float offsets; mirror the table to flip */
        job->ax.lower[x] *= 3;
        job->ax.upper[x] *= 3;
    }
    if (job->flip) {
        for (int a = 0, b = job->out_w - 1; a < b; a++, b--) {
            int t = job->ax.lower[a]; job->ax.lower[a] = job->ax.lower[b]; job->ax.lower[b] = t;
            t = job->ax.upper[a]; job->ax.upper[a] = job->ax.upper[b]; job->ax.upper[b] = t;
            float f = job->ax.lerp[a]; job->ax.lerp[a] = job->ax.lerp[b]; job->ax.lerp[b] = f;
        }
    }

    if (job->crop_y > 0) jpeg_skip_scanlines(&cinfo, (JDIMENSION)job->crop_y);

    /* Stream rows: row r of the crop lands in rows[r & 1]; output rows need rows lower[y] and upper[y]. */
    int next_row = 0; /* next crop row libjpeg will deliver */
    JSAMPROW scanline = job->scanline;
    for (int y = 0; y < job->out_h; y++) {
        const int lower = job->ay.lower[y], upper = job->ay.upper[y];
        while (next_row <= upper) {
            if (jpeg_read_scanlines(&cinfo, &scanline, 1) != 1) ERREXIT(&cinfo, JERR_INPUT_EOF);
            if (next_row >= lower) { /* rows above `lower` are never needed again */
                const uint8_t *crop = job->scanline + column_offset * channels;
                if (cmyk) {
                    cmyk_to_rgb(crop, cinfo.saw_Adobe_marker, job->crop_w, job->rgb);
                    crop = job->rgb;
                }
                resample(crop, job->ax.lower, job->ax.upper, job->ax.lerp, job->out_w, job->rows[next_row & 1]);
            }
            next_row++;
        }
        const size_t n = (size_t)job->out_w * 3;
        if (job->out_float)
            blend_float(job->rows[lower & 1], job->rows[upper & 1], job->ay.lerp[y], (int)n, (float *)job->out + y * n);
        else
            blend_uint8(job->rows[lower & 1], job->rows[upper & 1], job->ay.lerp[y], (int)n, (uint8_t *)job->out + y * n);
    }
    /* The rows below the crop are never decoded: destroying the decompressor drops them. */
    jpeg_destroy_decompress(&cinfo);
}

/* Image height, width and components from the JPEG header alone. */
static void read_header(const unsigned char *data, size_t size, int shape[3], Report *report) {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_source_mgr source;
    ErrorManager err;

    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = error_exit;
    err.pub.output_message = output_message;
    if (setjmp(err.jump)) {
        report_jpeg_error(report, &cinfo, data);
        jpeg_destroy_decompress(&cinfo);
        return;
    }
    jpeg_create_decompress(&cinfo);
    set_source(&cinfo, &source, data, size);
    jpeg_read_header(&cinfo, TRUE);
    shape[0] = (int)cinfo.image_height;
    shape[1] = (int)cinfo.image_width;
    shape[2] = cinfo.num_components;
    jpeg_destroy_decompress(&cinfo);
}


/* ------------------------------------------------------------------------------------------------ */
/* The random crop window: crop_window.sample_distorted_crop (TF's sample_distorted_bounding_box with
 * use_image_if_no_bounding_boxes=True), step for step, for the case without boxes (the whole image is the
 * object). The caller's options keep every intermediate value exact in a double (see CropOptions), so the
 * doubles here equal the Python version's ints and floats, and each comparison comes out the same. */

typedef struct {
    double area_low, area_high;   /* area_range, fractions of the image in (0, 1] */
    double ratio_low, ratio_high; /* aspect_ratio_range, within [MIN_RATIO, MAX_RATIO] */
    double min_covered;           /* min_object_covered, finite and >= 0 */
    int attempts;                 /* max_attempts, 1 to MAX_ATTEMPTS */
    int center_fallback;          /* fallback="center_crop" (else "image") */
} CropOptions;

/* The aspect ratios this sampler takes (image.py sends others to the Python sampler): with sides of at most
 * 65,535 pixels every height, width and area then stays below 2^53, exact in a double as the Python ints are. */
#define MIN_RATIO 1e-3
#define MAX_RATIO 1e3
#define MAX_ATTEMPTS 1000

/* TF's GenerateRandomCrop (crop_window._random_crop): 1 and the window, or 0 if no crop of that ratio fits. */
static int random_crop(int width, int height, const CropOptions *o, double aspect, double u_height, double u_y,
                       double u_x, int window[4]) {
    const double min_area = o->area_low * width * height;
    const double max_area = o->area_high * width * height;
    double crop_height = nearbyint(sqrt(min_area / aspect)); /* round(): ties to even */
    double max_height = nearbyint(sqrt(max_area / aspect));
    if (nearbyint(max_height * aspect) > width) {
        max_height = trunc((width + 0.5 - 1e-7) / aspect);
        if (nearbyint(max_height * aspect) > width) max_height -= 1;
    }
    if (max_height > height) max_height = height;
    if (crop_height > max_height) crop_height = max_height;
    if (crop_height < max_height) crop_height += trunc(u_height * (max_height - crop_height + 1));
    double crop_width = nearbyint(crop_height * aspect);
    double area = crop_width * crop_height;
    if (area < min_area) {
        crop_height += 1;
        crop_width = nearbyint(crop_height * aspect);
        area = crop_width * crop_height;
    }
    if (area > max_area) {
        crop_height -= 1;
        crop_width = nearbyint(crop_height * aspect);
        area = crop_width * crop_height;
    }
    if (!(min_area <= area && area <= max_area && 0 < crop_width && crop_width <= width && 0 < crop_height &&
          crop_height <= height))
        return 0;
    window[0] = crop_height < height ? (int)(u_y * (height - crop_height)) : 0;
    window[1] = crop_width < width ? (int)(u_x * (width - crop_width)) : 0;
    window[2] = (int)crop_height;
    window[3] = (int)crop_width;
    return 1;
}

/* TF's SatisfiesOverlapConstraints (crop_window._covers_an_object) with the whole image as the one box. */
static int covers_the_image(const int window[4], int width, int height, double min_covered) {
    const long long y = window[0], x = window[1], crop_h = window[2], crop_w = window[3];
    if (crop_h * crop_w < 1) return 0;
    const long long box_area = (long long)width * height;
    if (box_area < 1) return 0;
    const long long overlap_w = (x + crop_w < width ? x + crop_w : width) - (x > 0 ? x : 0);
    const long long overlap_h = (y + crop_h < height ? y + crop_h : height) - (y > 0 ? y : 0);
    const long long overlap = overlap_w >= 0 && overlap_h >= 0 ? overlap_w * overlap_h : 0;
    return (double)overlap / (double)box_area >= min_covered;
}

/* crop_window.sample_distorted_crop from 4 uniforms per attempt (aspect, height, y, x), then its fallback. */
static void sample_window(int height, int width, const CropOptions *o, const double *uniforms, int window[4]) {
    for (int i = 0; i < o->attempts; i++, uniforms += 4) {
        const double aspect = uniforms[0] * (o->ratio_high - o->ratio_low) + o->ratio_low;
        if (random_crop(width, height, o, aspect, uniforms[1], uniforms[2], uniforms[3], window) &&
            covers_the_image(window, width, height, o->min_covered))
            return;
    }
    if (o->center_fallback) { /* crop_window.center_crop_window(height, width, 0.875): float32 product */
        const float product = 0.875f * (float)(height < width ? height : width);
        const int side = (int)product > 1 ? (int)product : 1;
        window[0] = (height - side + 1) / 2;
        window[1] = (width - side + 1) / 2;
        window[2] = window[3] = side;
        return;
    }
    window[0] = window[1] = 0;
    window[2] = height;
    window[3] = width;
}

/* ------------------------------------------------------------------------------------------------ */
/* Python bindings. */

static int check_not_empty(const Py_buffer *data) {
    if (data->len == 0) {
        PyErr_SetString(InvalidArgumentError, "not a JPEG image: the input is empty");
        return 0;
    }
    return 1;
}

PyDoc_STRVAR(jpeg_shape_doc,
"jpeg_shape(jpeg) -> (height, width, components)\n\n"
"The image size from the JPEG header, without decoding the image.");

static PyObject *py_jpeg_shape(PyObject *self, PyObject *args) {
    Py_buffer data;
    int shape[3] = {0, 0, 0};
    Report report = {OK, -1, ""};
    (void)self;
    if (!PyArg_ParseTuple(args, "y*:jpeg_shape", &data)) return NULL;
    if (!check_not_empty(&data)) {
        PyBuffer_Release(&data);
        return NULL;
    }
    read_header(data.buf, (size_t)data.len, shape, &report);
    Py_ssize_t size = data.len;
    PyBuffer_Release(&data);
    if (report.status != OK) return raise_report(&report, size);
    return Py_BuildValue("(iii)", shape[0], shape[1], shape[2]);
}

/* Run `job` (its data and out set) without the GIL, free its buffers, raise its error if it failed. */
static PyObject *decode_job(Job *job, Py_ssize_t size) {
    Report report = {OK, -1, ""};
    Py_BEGIN_ALLOW_THREADS
    run_job(job, &report);
    Py_END_ALLOW_THREADS
    job_free(job);
    if (report.status != OK) return raise_report(&report, size);
    Py_RETURN_NONE;
}

/* The output buffer's size checked against out_h x out_w x 3 values of the job's type, each side 1 to
 * MAX_SIDE (as fi.image checks them; so the product cannot overflow). */
#define MAX_SIDE 65535
static int check_output(const Job *job, const Py_buffer *out, const char *op) {
    const Py_ssize_t item = job->out_float ? 4 : 1;
    if (job->out_h <= 0 || job->out_w <= 0 || job->out_h > MAX_SIDE || job->out_w > MAX_SIDE ||
        out->len != (Py_ssize_t)job->out_h * job->out_w * 3 * item) {
        PyErr_Format(InvalidArgumentError, "%s: an output buffer of %zd bytes does not hold %dx%dx3 %s values", op,
                     out->len, job->out_h, job->out_w, job->out_float ? "float32" : "uint8");
        return 0;
    }
    return 1;
}

/* Draw `n` doubles from numpy's bit generator as Generator.random would, holding the generator's lock
 * (BitGenerator.lock, a threading lock: its acquire waits without the GIL) as Generator.random holds it. */
static int draw_uniforms(bitgen_t *bitgen, PyObject *lock, double *uniforms, int n) {
    PyObject *held = PyObject_CallMethod(lock, "acquire", NULL);
    if (!held) return 0;
    Py_DECREF(held);
    for (int i = 0; i < n; i++) uniforms[i] = bitgen->next_double(bitgen->state);
    PyObject *released = PyObject_CallMethod(lock, "release", NULL);
    Py_XDECREF(released);
    return released != NULL;
}

PyDoc_STRVAR(decode_crop_resize_doc,
"decode_crop_resize(jpeg, out, crop_y, crop_x, crop_height, crop_width, out_height, out_width, flip, is_float)\n\n"
"Decode the crop window of `jpeg` (crop_height == 0: the whole image), resize it bilinearly\n"
"into `out`, a C-contiguous out_height x out_width x 3 buffer of float32 (is_float) or uint8,\n"
"and mirror it left-right when `flip`. Releases the GIL for all of it.");

static PyObject *py_decode_crop_resize(PyObject *self, PyObject *args) {
    Py_buffer data, out;
    Job job;
    (void)self;
    memset(&job, 0, sizeof job);
    if (!PyArg_ParseTuple(args, "y*w*iiiiiipp:decode_crop_resize", &data, &out, &job.crop_y, &job.crop_x,
                          &job.crop_h, &job.crop_w, &job.out_h, &job.out_w, &job.flip, &job.out_float))
        return NULL;
    PyObject *result = NULL;
    if (check_not_empty(&data) && check_output(&job, &out, "decode_crop_resize")) {
        job.data = data.buf;
        job.size = (size_t)data.len;
        job.out = out.buf;
        result = decode_job(&job, data.len);
    }
    PyBuffer_Release(&data);
    PyBuffer_Release(&out);
    return result;
}

PyDoc_STRVAR(random_crop_resize_doc,
"random_crop_resize(jpeg, out, out_height, out_width, is_float, capsule, lock, options) -> bool\n\n"
"fi.image.decode_random_crop_resize without bounding boxes, in one call. `options`: (area_low, area_high,\n"
"ratio_low, ratio_high, min_covered, attempts, center_fallback, flip, max_pixels), checked (aspect ratios\n"
"within [1e-3, 1e3]). Reads the JPEG header's size; then, holding `lock`, draws 4 * attempts uniforms from the\n"
"numpy bit generator of `capsule` (BitGenerator.capsule), and one more for the flip when `flip`, as\n"
"Generator.random((attempts, 4)) and Generator.random() draw them; samples the window from them as\n"
"crop_window.sample_distorted_crop does; decodes into `out` without the GIL, flipped when that last uniform is\n"
"below 0.5; returns True. False, nothing drawn or decoded, when the header claims more than max_pixels pixels.");

static PyObject *py_random_crop_resize(PyObject *self, PyObject *args) {
    Py_buffer data, out;
    PyObject *capsule, *lock;
    CropOptions o;
    int flip;
    long long max_pixels;
    Job job;
    (void)self;
    memset(&job, 0, sizeof job);
    if (!PyArg_ParseTuple(args, "y*w*iipO!O(dddddippL):random_crop_resize", &data, &out, &job.out_h, &job.out_w,
                          &job.out_float, &PyCapsule_Type, &capsule, &lock, &o.area_low, &o.area_high, &o.ratio_low,
                          &o.ratio_high, &o.min_covered, &o.attempts, &o.center_fallback, &flip, &max_pixels))
        return NULL;
    PyObject *result = NULL;
    bitgen_t *bitgen = (bitgen_t *)PyCapsule_GetPointer(capsule, "BitGenerator");
    if (!bitgen || !check_not_empty(&data) || !check_output(&job, &out, "random_crop_resize")) goto done;
    if (!(o.attempts >= 1 && o.attempts <= MAX_ATTEMPTS && o.area_low > 0 && o.area_low <= o.area_high &&
          o.area_high <= 1 && o.ratio_low >= MIN_RATIO && o.ratio_low <= o.ratio_high && o.ratio_high <= MAX_RATIO &&
          o.min_covered >= 0 && isfinite(o.min_covered) && max_pixels >= 1)) {
        PyErr_SetString(PyExc_ValueError, "random_crop_resize: crop options out of range");
        goto done;
    }
    int shape[3] = {0, 0, 0};
    Report report = {OK, -1, ""};
    read_header(data.buf, (size_t)data.len, shape, &report);
    if (report.status != OK) {
        raise_report(&report, data.len);
        goto done;
    }
    const int height = shape[0], width = shape[1];
    if ((long long)height * width > max_pixels) {
        result = Py_NewRef(Py_False);
        goto done;
    }
    double uniforms[4 * MAX_ATTEMPTS + 1];
    if (!draw_uniforms(bitgen, lock, uniforms, 4 * o.attempts + (flip ? 1 : 0))) goto done;
    int window[4];
    sample_window(height, width, &o, uniforms, window);
    job.crop_y = window[0];
    job.crop_x = window[1];
    job.crop_h = window[2];
    job.crop_w = window[3];
    job.flip = flip && uniforms[4 * o.attempts] < 0.5;
    job.data = data.buf;
    job.size = (size_t)data.len;
    job.out = out.buf;
    result = decode_job(&job, data.len);
    if (result) Py_SETREF(result, Py_NewRef(Py_True));
done:
    PyBuffer_Release(&data);
    PyBuffer_Release(&out);
    return result;
}

static PyMethodDef methods[] = {
    {"jpeg_shape", py_jpeg_shape, METH_VARARGS, jpeg_shape_doc},
    {"decode_crop_resize", py_decode_crop_resize, METH_VARARGS, decode_crop_resize_doc},
    {"random_crop_resize", py_random_crop_resize, METH_VARARGS, random_crop_resize_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_jpeg",
    "Crop-only JPEG decoding fused with bilinear resize and flip (libjpeg-turbo), without the GIL.",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__jpeg(void) {
    PyObject *errors = PyImport_ImportModule("fastinput.errors");
    if (!errors) return NULL;
    InvalidArgumentError = PyObject_GetAttrString(errors, "InvalidArgumentError");
    DataLossError = PyObject_GetAttrString(errors, "DataLossError");
    Py_DECREF(errors);
    if (!InvalidArgumentError || !DataLossError) return NULL;
#ifdef AVX2_VERSIONS
    if (__builtin_cpu_supports("avx2")) resample = resample_row_avx2;
#endif
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddIntConstant(m, "LIBJPEG_TURBO_VERSION", LIBJPEG_TURBO_VERSION_NUMBER) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
