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
    case GRIMC_E_CHECKSUM: return "weight blob checksum mismatch (corrupted or modified)";
    case GRIMC_E_LAYOUT:
        return "weight blob does not match the model (entry count, sizes or index arrays)";
    case GRIMC_E_RANGE: return "an integer input (an index) is out of range";
    case GRIMC_E_NO_DEVICE: return "no OpenCL platform or no matching device";
    case GRIMC_E_BUILD: return "OpenCL program build failed";
    case GRIMC_E_DEVICE: return "OpenCL error";
    case GRIMC_E_NO_FP16: return "OpenCL device lacks cl_khr_fp16 (half arithmetic)";
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

/* Table and entry checks; assumes blob_check_header passed. Entries lie in
 * index order without overlap, so no two entries alias. */
static int blob_check_entries(const unsigned char *p, uint64_t total) {
    uint64_t count = blob_rd_u32(p + 12);
    uint64_t table_end =
        GRIMC_BLOB_HEADER_BYTES + GRIMC_BLOB_ENTRY_BYTES * count;
    if (table_end > total) {
        return GRIMC_E_BOUNDS;
    }
    uint64_t prev_end = table_end;
    for (uint64_t i = 0; i < count; i++) {
        const unsigned char *e = p + GRIMC_BLOB_HEADER_BYTES +
                                 GRIMC_BLOB_ENTRY_BYTES * i;
        uint64_t off = blob_rd_u64(e), nbytes = blob_rd_u64(e + 8);
        if (off % GRIMC_ALIGN != 0) {
            return GRIMC_E_ALIGN;
        }
        if (off < prev_end || off > total || nbytes > total - off) {
            return GRIMC_E_BOUNDS;
        }
        prev_end = off + nbytes;
    }
    return GRIMC_OK;
}

/* CRC-32 (IEEE 802.3, as zlib's crc32) continuing from `crc`, slicing by 8.
 * The 8 KiB table is built per call (about 2k steps): no global state. */
static uint32_t blob_crc32(uint32_t crc, const unsigned char *p, size_t n) {
    uint32_t t[8][256];
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) {
            c = c & 1u ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        }
        t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
        for (int s = 1; s < 8; s++) {
            t[s][i] = t[0][t[s - 1][i] & 0xFFu] ^ (t[s - 1][i] >> 8);
        }
    }
    crc = ~crc;
    for (; n >= 8; n -= 8, p += 8) {
        uint32_t lo = crc ^ blob_rd_u32(p), hi = blob_rd_u32(p + 4);
        crc = t[7][lo & 0xFFu] ^ t[6][(lo >> 8) & 0xFFu] ^
              t[5][(lo >> 16) & 0xFFu] ^ t[4][lo >> 24] ^ t[3][hi & 0xFFu] ^
              t[2][(hi >> 8) & 0xFFu] ^ t[1][(hi >> 16) & 0xFFu] ^
              t[0][hi >> 24];
    }
    for (; n > 0; n--, p++) {
        crc = t[0][(crc ^ *p) & 0xFFu] ^ (crc >> 8);
    }
    return ~crc;
}

GRIMC_RT_API uint32_t grimc_blob_checksum(const void *data, size_t size) {
    static const unsigned char zeros[8];
    const unsigned char *p = data;
    if (p == NULL || size < GRIMC_BLOB_HEADER_BYTES) {
        return 0;
    }
    uint32_t crc = blob_crc32(0, p, 24);
    crc = blob_crc32(crc, zeros, 8);
    return blob_crc32(crc, p + GRIMC_BLOB_HEADER_BYTES,
                      size - GRIMC_BLOB_HEADER_BYTES);
}

/* Content check, after the structure is known to be sound. Fuzzing builds
 * skip it so mutated payloads reach the checks and code behind it. */
static int blob_check_sum(const unsigned char *p, uint64_t total) {
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    (void)p;
    (void)total;
    return GRIMC_OK;
#else
    return blob_rd_u64(p + 24) == grimc_blob_checksum(p, (size_t)total)
               ? GRIMC_OK
               : GRIMC_E_CHECKSUM;
#endif
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
        rc = blob_check_sum(p, total);
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

/* SHA-256 (FIPS 180-4) of n bytes into out[32]. */
static uint32_t sha_rotr(uint32_t x, int r) { return x >> r | x << (32 - r); }

static void sha256_block(uint32_t h[8], const unsigned char *blk) {
    static const uint32_t k[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
        0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
        0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
        0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
        0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
        0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
        0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
        0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
    uint32_t w[64], v[8];
    for (int i = 0; i < 16; i++) {
        const unsigned char *q = blk + 4 * i;
        w[i] = (uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 |
               (uint32_t)q[2] << 8 | (uint32_t)q[3];
    }
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = sha_rotr(w[i - 15], 7) ^ sha_rotr(w[i - 15], 18) ^
                      (w[i - 15] >> 3);
        uint32_t s1 = sha_rotr(w[i - 2], 17) ^ sha_rotr(w[i - 2], 19) ^
                      (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    memcpy(v, h, sizeof v);
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = v[7] +
                      (sha_rotr(v[4], 6) ^ sha_rotr(v[4], 11) ^ sha_rotr(v[4], 25)) +
                      ((v[4] & v[5]) ^ (~v[4] & v[6])) + k[i] + w[i];
        uint32_t t2 = (sha_rotr(v[0], 2) ^ sha_rotr(v[0], 13) ^ sha_rotr(v[0], 22)) +
                      ((v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]));
        memmove(v + 1, v, 7 * sizeof *v);
        v[4] += t1;
        v[0] = t1 + t2;
    }
    for (int i = 0; i < 8; i++) {
        h[i] += v[i];
    }
}

GRIMC_RT_API void grimc_sha256(const void *data, size_t n, unsigned char out[32]) {
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    const unsigned char *p = data;
    size_t left = n;
    for (; left >= 64; left -= 64, p += 64) {
        sha256_block(h, p);
    }
    unsigned char tail[128] = {0};
    if (left > 0) {
        memcpy(tail, p, left);
    }
    tail[left] = 0x80;
    size_t tail_len = left < 56 ? 64 : 128;
    uint64_t bits = (uint64_t)n * 8;
    for (int i = 0; i < 8; i++) {
        tail[tail_len - 1 - i] = (unsigned char)(bits >> (8 * i));
    }
    sha256_block(h, tail);
    if (tail_len == 128) {
        sha256_block(h, tail + 64);
    }
    for (int i = 0; i < 8; i++) {
        for (int b = 0; b < 4; b++) {
            out[4 * i + b] = (unsigned char)(h[i] >> (24 - 8 * b));
        }
    }
}

GRIMC_RT_API int grimc_blob_bind(const grimc_blob *blob, const grimc_blob_expect *expect,
                    uint32_t n, const void **out) {
    if (blob == NULL || blob->base == NULL || (n > 0 && (expect == NULL || out == NULL))) {
        return GRIMC_E_ARG;
    }
    if (blob->count != n) {
        return GRIMC_E_LAYOUT;
    }
    for (uint32_t i = 0; i < n; i++) {
        out[i] = grimc_blob_entry(blob, i, expect[i].nbytes);
        if (out[i] == NULL) {
            return GRIMC_E_LAYOUT;
        }
        if (expect[i].sha256 != NULL) {
            unsigned char digest[32];
            grimc_sha256(out[i], expect[i].nbytes, digest);
            if (memcmp(digest, expect[i].sha256, sizeof digest) != 0) {
                return GRIMC_E_LAYOUT;
            }
        }
    }
    return GRIMC_OK;
}

void grimc_blob_free(grimc_blob *blob) {
    if (blob != NULL) {
        grimc_aligned_free(blob->owned);
        memset(blob, 0, sizeof *blob);
    }
}
