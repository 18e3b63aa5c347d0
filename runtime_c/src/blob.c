/* GRIMCWB1 weight blob: validation, file loading, entry lookup. The format
 * is specified in grimc_rt.h. */
#ifndef _POSIX_C_SOURCE /* also inlined after _GNU_SOURCE by the codegen */
#define _POSIX_C_SOURCE 200809L
#endif

#include "grimc_rt.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

GRIMC_RT_API const char *grimc_strerror(int status) {
    switch (status) {
    case GRIMC_OK: return "success";
    case GRIMC_E_ARG: return "invalid argument";
    case GRIMC_E_IO: return "cannot open or read file";
    case GRIMC_E_NOMEM: return "out of memory";
    case GRIMC_E_MAGIC: return "not a grimc weight blob (bad magic)";
    case GRIMC_E_VERSION: return "unsupported weight blob version";
    case GRIMC_E_TRUNCATED: return "weight blob is truncated";
    case GRIMC_E_SIZE: return "weight blob has trailing bytes";
    case GRIMC_E_BOUNDS: return "weight blob entry out of bounds";
    case GRIMC_E_ALIGN: return "weight blob data is not 64-byte aligned";
    case GRIMC_E_UNSUPPORTED: return "not built in (e.g. profiling needs -DGRIMC_PROFILE)";
    default: return "unknown grimc error";
    }
}

/* Little-endian reads through memcpy: no alignment or aliasing concerns. */
static uint32_t blob_rd_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t blob_rd_u64(const unsigned char *p) {
    return (uint64_t)blob_rd_u32(p) | (uint64_t)blob_rd_u32(p + 4) << 32;
}

/* Header checks shared by view and load: magic, version, declared size. */
static int blob_check_header(const unsigned char *p, size_t size,
                        uint64_t *total_out) {
    if (size < GRIMC_BLOB_HEADER_BYTES) {
        return size >= 8 && memcmp(p, GRIMC_BLOB_MAGIC, 8) != 0
                   ? GRIMC_E_MAGIC
                   : GRIMC_E_TRUNCATED;
    }
    if (memcmp(p, GRIMC_BLOB_MAGIC, 8) != 0) {
        return GRIMC_E_MAGIC;
    }
    if (blob_rd_u32(p + 8) != GRIMC_BLOB_VERSION) {
        return GRIMC_E_VERSION;
    }
    uint64_t total = blob_rd_u64(p + 16);
    if ((uint64_t)size < total) {
        return GRIMC_E_TRUNCATED;
    }
    if ((uint64_t)size > total) {
        return GRIMC_E_SIZE;
    }
    *total_out = total;
    return GRIMC_OK;
}

/* Table and entry checks; assumes blob_check_header passed. */
static int blob_check_entries(const unsigned char *p, uint64_t total) {
    uint64_t count = blob_rd_u32(p + 12);
    uint64_t table_end =
        GRIMC_BLOB_HEADER_BYTES + GRIMC_BLOB_ENTRY_BYTES * count;
    if (table_end > total) {
        return GRIMC_E_BOUNDS;
    }
    for (uint64_t i = 0; i < count; i++) {
        const unsigned char *e = p + GRIMC_BLOB_HEADER_BYTES +
                                 GRIMC_BLOB_ENTRY_BYTES * i;
        uint64_t off = blob_rd_u64(e), nbytes = blob_rd_u64(e + 8);
        if (off % GRIMC_ALIGN != 0) {
            return GRIMC_E_ALIGN;
        }
        if (off < table_end || off > total || nbytes > total - off) {
            return GRIMC_E_BOUNDS;
        }
    }
    return GRIMC_OK;
}

GRIMC_RT_API int grimc_blob_view(const void *data, size_t size, grimc_blob *out) {
    if (out == NULL) {
        return GRIMC_E_ARG;
    }
    memset(out, 0, sizeof *out);
    if (data == NULL) {
        return GRIMC_E_ARG;
    }
    const unsigned char *p = data;
    uint64_t total = 0;
    int rc = blob_check_header(p, size, &total);
    if (rc == GRIMC_OK && (uintptr_t)p % GRIMC_ALIGN != 0) {
        rc = GRIMC_E_ALIGN;
    }
    if (rc == GRIMC_OK) {
        rc = blob_check_entries(p, total);
    }
    if (rc == GRIMC_OK) {
        out->base = p;
        out->size = size;
        out->count = blob_rd_u32(p + 12);
    }
    return rc;
}

/* Size of an open file via seek; -1 on failure. */
static long blob_file_size(FILE *f) {
    if (fseek(f, 0, SEEK_END) != 0) {
        return -1;
    }
    long n = ftell(f);
    if (fseek(f, 0, SEEK_SET) != 0) {
        return -1;
    }
    return n;
}

GRIMC_RT_API int grimc_blob_load(const char *path, grimc_blob *out) {
    if (out == NULL) {
        return GRIMC_E_ARG;
    }
    memset(out, 0, sizeof *out);
    if (path == NULL) {
        return GRIMC_E_ARG;
    }
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return GRIMC_E_IO;
    }
    int rc = GRIMC_E_IO;
    unsigned char *buf = NULL;
    long n = blob_file_size(f);
    if (n < 0) {
        goto done;
    }
    /* Validate the header before allocating, so a hostile total_size can
     * never drive a huge allocation. */
    unsigned char head[GRIMC_BLOB_HEADER_BYTES];
    size_t nhead = (size_t)n < sizeof head ? (size_t)n : sizeof head;
    if (fread(head, 1, nhead, f) != nhead) {
        goto done;
    }
    uint64_t total = 0;
    rc = blob_check_header(head, (size_t)n, &total);
    if (rc != GRIMC_OK) {
        goto done;
    }
    buf = grimc_aligned_alloc(GRIMC_ALIGN, (size_t)n);
    if (buf == NULL) {
        rc = GRIMC_E_NOMEM;
        goto done;
    }
    memcpy(buf, head, nhead);
    if (fread(buf + nhead, 1, (size_t)n - nhead, f) != (size_t)n - nhead) {
        rc = GRIMC_E_TRUNCATED; /* file shrank while reading */
        goto done;
    }
    rc = grimc_blob_view(buf, (size_t)n, out);
    if (rc == GRIMC_OK) {
        out->owned = buf;
        buf = NULL;
    }
done:
    grimc_aligned_free(buf);
    fclose(f);
    return rc;
}

GRIMC_RT_API size_t grimc_blob_entry_size(const grimc_blob *blob, uint32_t index) {
    if (blob == NULL || blob->base == NULL || index >= blob->count) {
        return SIZE_MAX;
    }
    const unsigned char *e = blob->base + GRIMC_BLOB_HEADER_BYTES +
                             (size_t)GRIMC_BLOB_ENTRY_BYTES * index;
    return (size_t)blob_rd_u64(e + 8);
}

GRIMC_RT_API const void *grimc_blob_entry(const grimc_blob *blob, uint32_t index,
                             size_t expected_bytes) {
    if (grimc_blob_entry_size(blob, index) != expected_bytes) {
        return NULL;
    }
    const unsigned char *e = blob->base + GRIMC_BLOB_HEADER_BYTES +
                             (size_t)GRIMC_BLOB_ENTRY_BYTES * index;
    return blob->base + blob_rd_u64(e);
}

GRIMC_RT_API const float *grimc_blob_tensor(const grimc_blob *blob, uint32_t index,
                               size_t expected_bytes) {
    if (expected_bytes % sizeof(float) != 0) {
        return NULL;
    }
    return grimc_blob_entry(blob, index, expected_bytes);
}

GRIMC_RT_API void grimc_blob_free(grimc_blob *blob) {
    if (blob != NULL) {
        grimc_aligned_free(blob->owned);
        memset(blob, 0, sizeof *blob);
    }
}
