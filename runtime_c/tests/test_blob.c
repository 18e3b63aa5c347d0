/* GRIMCWB1 weight blob: views of in-memory blobs built here, file loading,
 * and - when the pytest driver provides them - a blob written by Python
 * (argv[2]) and the same blob embedded with GRIMC_INCBIN.
 *
 * Usage: test_blob [scratch_dir [fixture.blob]]
 * Build with -DGRIMC_TEST_BLOB_PATH="\"/abs/fixture.blob\"" to embed it.
 *
 * The fixture has 3 entries: 0 = float32[7] {k*0.5 - 1}, 1 = empty,
 * 2 = int32[33] {k*k - 5}. build_fixture() writes the same layout. */
#define _POSIX_C_SOURCE 200809L

#include "grimc_rt.h"
#include "grimc_test.h"

#ifdef GRIMC_TEST_BLOB_PATH
#include "grimc_incbin.h"
GRIMC_INCBIN(fixture_blob, GRIMC_TEST_BLOB_PATH);
#endif

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *scratch_dir = "/tmp";

/* ---- a reference writer (little-endian hosts only, as are our targets) */

static void wr_u32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void wr_u64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }

static size_t round64(size_t x) { return (x + 63) & ~(size_t)63; }

/* Lays out entries in index order, each at the next multiple of 64, and
 * pads the end to 64. buf must be zeroed and large enough. */
static size_t write_blob(unsigned char *buf, const void *const *data,
                         const size_t *nbytes, uint32_t count) {
    size_t pos = round64(GRIMC_BLOB_HEADER_BYTES + GRIMC_BLOB_ENTRY_BYTES * count);
    for (uint32_t i = 0; i < count; i++) {
        unsigned char *e = buf + GRIMC_BLOB_HEADER_BYTES + GRIMC_BLOB_ENTRY_BYTES * i;
        wr_u64(e, pos);
        wr_u64(e + 8, nbytes[i]);
        if (nbytes[i]) {
            memcpy(buf + pos, data[i], nbytes[i]);
        }
        pos = round64(pos + nbytes[i]);
    }
    memcpy(buf, GRIMC_BLOB_MAGIC, 8);
    wr_u32(buf + 8, GRIMC_BLOB_VERSION);
    wr_u32(buf + 12, count);
    wr_u64(buf + 16, pos);
    wr_u64(buf + 24, grimc_blob_checksum(buf, pos));
    return pos;
}

/* Rewrite the checksum after a deliberate edit, so the structural check
 * under test is the one that answers. */
static void reseal(unsigned char *buf, size_t n) {
    wr_u64(buf + 24, grimc_blob_checksum(buf, n));
}

#define BUF_BYTES 4096
static unsigned char *new_buf(void) {
    unsigned char *b = grimc_aligned_alloc(64, BUF_BYTES);
    memset(b, 0, BUF_BYTES);
    return b;
}

static size_t build_fixture(unsigned char *buf) {
    static float f[7];
    static int32_t ints[33];
    for (int k = 0; k < 7; k++) {
        f[k] = (float)k * 0.5f - 1.0f;
    }
    for (int k = 0; k < 33; k++) {
        ints[k] = k * k - 5;
    }
    const void *data[3] = {f, NULL, ints};
    const size_t nbytes[3] = {sizeof f, 0, sizeof ints};
    return write_blob(buf, data, nbytes, 3);
}

/* Checks a blob holding the fixture; returns the number of violations. */
static int verify_fixture(const grimc_blob *b) {
    int bad = b->count != 3;
    const float *f = grimc_blob_tensor(b, 0, 7 * sizeof(float));
    bad += f == NULL || (uintptr_t)f % 64 != 0;
    for (int k = 0; f && k < 7; k++) {
        bad += f[k] != (float)k * 0.5f - 1.0f;
    }
    bad += grimc_blob_entry(b, 1, 0) == NULL;
    bad += grimc_blob_entry_size(b, 1) != 0;
    const int32_t *ints = grimc_blob_entry(b, 2, 33 * sizeof(int32_t));
    bad += ints == NULL || (uintptr_t)ints % 64 != 0;
    for (int k = 0; ints && k < 33; k++) {
        bad += ints[k] != k * k - 5;
    }
    return bad;
}

/* ---- views */

static void test_view_good(void) {
    unsigned char *buf = new_buf();
    size_t n = build_fixture(buf);
    grimc_blob b;
    CHECK(grimc_blob_view(buf, n, &b) == GRIMC_OK);
    CHECK(verify_fixture(&b) == 0);
    CHECK(b.owned == NULL && b.size == n);
    CHECK(grimc_blob_tensor(&b, 0, 6 * sizeof(float)) == NULL); /* wrong size */
    CHECK(grimc_blob_tensor(&b, 0, 27) == NULL);                /* not fp32 */
    CHECK(grimc_blob_tensor(&b, 3, 0) == NULL);                 /* no entry 3 */
    CHECK(grimc_blob_entry_size(&b, 3) == SIZE_MAX);
    CHECK(grimc_blob_tensor(NULL, 0, 28) == NULL);
    grimc_blob_free(&b);
    CHECK(b.base == NULL && b.count == 0);
    grimc_aligned_free(buf);
}

static void test_view_truncated_or_long(void) {
    unsigned char *buf = new_buf();
    size_t n = build_fixture(buf);
    grimc_blob b;
    CHECK(grimc_blob_view(buf, n - 1, &b) == GRIMC_E_TRUNCATED);
    CHECK(b.base == NULL);
    CHECK(grimc_blob_view(buf, 20, &b) == GRIMC_E_TRUNCATED);
    CHECK(grimc_blob_view(buf, 0, &b) == GRIMC_E_TRUNCATED);
    CHECK(grimc_blob_view(buf, n + 64, &b) == GRIMC_E_SIZE);
    CHECK(grimc_blob_view(NULL, n, &b) == GRIMC_E_ARG);
    CHECK(grimc_blob_view(buf, n, NULL) == GRIMC_E_ARG);
    grimc_aligned_free(buf);
}

static void test_view_bad_header(void) {
    unsigned char *buf = new_buf();
    size_t n = build_fixture(buf);
    grimc_blob b;
    buf[7] = '2'; /* "GRIMCWB2" */
    CHECK(grimc_blob_view(buf, n, &b) == GRIMC_E_MAGIC);
    CHECK(grimc_blob_view(buf, 16, &b) == GRIMC_E_MAGIC);
    buf[7] = '1';
    wr_u32(buf + 8, 1); /* version 1 had no checksum */
    reseal(buf, n);
    CHECK(grimc_blob_view(buf, n, &b) == GRIMC_E_VERSION);
    wr_u32(buf + 8, 3);
    reseal(buf, n);
    CHECK(grimc_blob_view(buf, n, &b) == GRIMC_E_VERSION);
    wr_u32(buf + 8, GRIMC_BLOB_VERSION);
    reseal(buf, n);
    CHECK(grimc_blob_view(buf, n, &b) == GRIMC_OK);
    grimc_aligned_free(buf);
}

/* Corrupt one table field of entry `idx` and return the view's status. */
static int view_with_entry(uint32_t idx, int field, uint64_t value) {
    unsigned char *buf = new_buf();
    size_t n = build_fixture(buf);
    wr_u64(buf + GRIMC_BLOB_HEADER_BYTES + GRIMC_BLOB_ENTRY_BYTES * idx + 8 * field,
           value);
    reseal(buf, n);
    grimc_blob b;
    int rc = grimc_blob_view(buf, n, &b);
    grimc_aligned_free(buf);
    return rc;
}

static void test_view_entry_out_of_range(void) {
    unsigned char *buf = new_buf();
    size_t n = build_fixture(buf);
    grimc_aligned_free(buf);
    CHECK(view_with_entry(2, 1, 1u << 20) == GRIMC_E_BOUNDS);     /* nbytes */
    CHECK(view_with_entry(0, 0, n + 64) == GRIMC_E_BOUNDS);       /* offset */
    CHECK(view_with_entry(0, 0, 0) == GRIMC_E_BOUNDS);            /* in header */
    CHECK(view_with_entry(0, 0, 72) == GRIMC_E_ALIGN);            /* unaligned */
    /* Aligned offset near 2^64, and an nbytes that wraps offset + nbytes
     * around 2^64: both must be caught without overflow. */
    CHECK(view_with_entry(2, 0, UINT64_MAX - 63) == GRIMC_E_BOUNDS);
    CHECK(view_with_entry(0, 1, UINT64_MAX) == GRIMC_E_BOUNDS);
    /* An empty entry may sit anywhere not before the previous entry's end. */
    CHECK(view_with_entry(1, 0, 128 + 64) == GRIMC_OK);
    CHECK(view_with_entry(1, 0, 128) == GRIMC_E_BOUNDS); /* inside entry 0 */
    /* Overlapping or aliased entries. */
    CHECK(view_with_entry(2, 0, 128) == GRIMC_E_BOUNDS);  /* aliases entry 0 */
    CHECK(view_with_entry(1, 1, 64) == GRIMC_E_BOUNDS);   /* runs into entry 2 */
    CHECK(view_with_entry(1, 0, n) == GRIMC_E_BOUNDS);    /* after entry 2 starts */

    /* A count whose table runs past the end of the blob. */
    buf = new_buf();
    n = build_fixture(buf);
    wr_u32(buf + 12, UINT32_MAX);
    reseal(buf, n);
    grimc_blob b;
    CHECK(grimc_blob_view(buf, n, &b) == GRIMC_E_BOUNDS);
    grimc_aligned_free(buf);
}

static void test_view_unaligned_base(void) {
    unsigned char *buf = new_buf();
    size_t n = build_fixture(buf);
    memmove(buf + 4, buf, n);
    grimc_blob b;
    CHECK(grimc_blob_view(buf + 4, n, &b) == GRIMC_E_ALIGN);
    grimc_aligned_free(buf);
}

static void test_strerror(void) {
    const int codes[] = {GRIMC_OK,         GRIMC_E_ARG,     GRIMC_E_IO,
                         GRIMC_E_NOMEM,    GRIMC_E_MAGIC,   GRIMC_E_VERSION,
                         GRIMC_E_TRUNCATED, GRIMC_E_SIZE,   GRIMC_E_BOUNDS,
                         GRIMC_E_ALIGN,    GRIMC_E_UNSUPPORTED,
                         GRIMC_E_CHECKSUM, GRIMC_E_LAYOUT,  GRIMC_E_RANGE,
                         GRIMC_E_NO_DEVICE,
                         GRIMC_E_BUILD,    GRIMC_E_DEVICE,  GRIMC_E_NO_FP16};
    const int n = (int)(sizeof codes / sizeof *codes);
    for (int i = 0; i < n; i++) {
        CHECK(grimc_strerror(codes[i]) != NULL);
        for (int j = 0; j < i; j++) {
            CHECK(strcmp(grimc_strerror(codes[i]), grimc_strerror(codes[j])) != 0);
        }
    }
    CHECK(strcmp(grimc_strerror(12345), "unknown grimc error") == 0);
}

/* ---- content checks */

static void test_checksum(void) {
    /* The standard CRC-32 check value, through the blob rule: a 32-byte
     * "header" of which bytes 24..31 do not count. */
    unsigned char hdr[41] = {0};
    memcpy(hdr + 32, "123456789", 9);
    uint32_t with_digits = grimc_blob_checksum(hdr, sizeof hdr);
    memset(hdr + 24, 0xAB, 8);
    CHECK(grimc_blob_checksum(hdr, sizeof hdr) == with_digits);
    CHECK(grimc_blob_checksum(hdr, 31) == 0); /* shorter than a header */
    CHECK(grimc_blob_checksum(NULL, 64) == 0);

    unsigned char *buf = new_buf();
    size_t n = build_fixture(buf);
    grimc_blob b;
    for (size_t bit = 0; bit < 8 * n; bit += 37) {
        if (bit / 8 >= 24 && bit / 8 < 32) {
            continue; /* the checksum field: its own test below */
        }
        buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        CHECK(grimc_blob_view(buf, n, &b) != GRIMC_OK);
        buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
    }
    buf[28] = 1; /* upper half of the field must be zero */
    CHECK(grimc_blob_view(buf, n, &b) == GRIMC_E_CHECKSUM);
    buf[28] = 0;
    buf[24] ^= 1;
    CHECK(grimc_blob_view(buf, n, &b) == GRIMC_E_CHECKSUM);
    buf[24] ^= 1;
    CHECK(grimc_blob_view(buf, n, &b) == GRIMC_OK);
    grimc_aligned_free(buf);
}

static void test_sha256(void) {
    /* FIPS 180-2 examples: "abc", and a two-block message. */
    static const unsigned char abc[32] = {
        0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
        0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
        0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    static const unsigned char two[32] = {
        0x24, 0x8d, 0x6a, 0x61, 0xd2, 0x06, 0x38, 0xb8, 0xe5, 0xc0, 0x26,
        0x93, 0x0c, 0x3e, 0x60, 0x39, 0xa3, 0x3c, 0xe4, 0x59, 0x64, 0xff,
        0x21, 0x67, 0xf6, 0xec, 0xed, 0xd4, 0x19, 0xdb, 0x06, 0xc1};
    static const unsigned char empty[32] = {
        0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4,
        0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b,
        0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55};
    unsigned char d[32];
    grimc_sha256("abc", 3, d);
    CHECK(memcmp(d, abc, 32) == 0);
    const char *msg = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    grimc_sha256(msg, strlen(msg), d);
    CHECK(memcmp(d, two, 32) == 0);
    grimc_sha256("", 0, d);
    CHECK(memcmp(d, empty, 32) == 0);
}

static void test_bind(void) {
    unsigned char *buf = new_buf();
    size_t n = build_fixture(buf);
    grimc_blob b;
    CHECK(grimc_blob_view(buf, n, &b) == GRIMC_OK);
    unsigned char pin[32];
    grimc_sha256(buf + 192, 33 * sizeof(int32_t), pin); /* entry 2 */
    grimc_blob_expect ex[3] = {{28, NULL}, {0, NULL}, {132, pin}};
    const void *p[3] = {NULL, NULL, NULL};
    CHECK(grimc_blob_bind(&b, ex, 3, p) == GRIMC_OK);
    CHECK(p[0] == buf + 128 && p[1] != NULL && p[2] == buf + 192);
    CHECK(grimc_blob_bind(&b, ex, 2, p) == GRIMC_E_LAYOUT); /* count */
    ex[0].nbytes = 24;
    CHECK(grimc_blob_bind(&b, ex, 3, p) == GRIMC_E_LAYOUT); /* size */
    ex[0].nbytes = 28;
    pin[5] ^= 1;
    CHECK(grimc_blob_bind(&b, ex, 3, p) == GRIMC_E_LAYOUT); /* index digest */
    pin[5] ^= 1;
    CHECK(grimc_blob_bind(NULL, ex, 3, p) == GRIMC_E_ARG);
    CHECK(grimc_blob_bind(&b, NULL, 3, p) == GRIMC_E_ARG);
    CHECK(grimc_blob_bind(&b, ex, 3, NULL) == GRIMC_E_ARG);
    grimc_aligned_free(buf);
}

/* ---- files */

/* Writes n bytes to a fresh file under scratch_dir; path_out gets its name. */
static int write_temp(const void *data, size_t n, char *path_out, size_t cap) {
    snprintf(path_out, cap, "%s/grimc_blob_XXXXXX", scratch_dir);
    int fd = mkstemp(path_out);
    if (fd < 0) {
        return -1;
    }
    FILE *f = fdopen(fd, "wb");
    int ok = f != NULL && fwrite(data, 1, n, f) == n;
    if (f == NULL || fclose(f) != 0) {
        ok = 0;
    }
    return ok ? 0 : -1;
}

/* Load `n` bytes of buf through a temp file and return the status. */
static int load_bytes(const unsigned char *buf, size_t n, int *fixture_bad) {
    char path[4096];
    if (write_temp(buf, n, path, sizeof path) != 0) {
        return 999;
    }
    grimc_blob b;
    int rc = grimc_blob_load(path, &b);
    if (rc == GRIMC_OK) {
        *fixture_bad = verify_fixture(&b) + (b.owned == NULL);
    } else {
        *fixture_bad = b.base != NULL || b.owned != NULL;
    }
    grimc_blob_free(&b);
    unlink(path);
    return rc;
}

static void test_load_files(void) {
    unsigned char *buf = new_buf();
    size_t n = build_fixture(buf);
    int bad = 0;
    CHECK(load_bytes(buf, n, &bad) == GRIMC_OK);
    CHECK(bad == 0);
    CHECK(load_bytes(buf, n - 10, &bad) == GRIMC_E_TRUNCATED && bad == 0);
    CHECK(load_bytes(buf, 0, &bad) == GRIMC_E_TRUNCATED && bad == 0);
    CHECK(load_bytes(buf, 5, &bad) == GRIMC_E_TRUNCATED && bad == 0);
    CHECK(load_bytes(buf, n + 1, &bad) == GRIMC_E_SIZE && bad == 0);
    wr_u64(buf + 16, UINT64_MAX); /* hostile size: no huge allocation */
    CHECK(load_bytes(buf, n, &bad) == GRIMC_E_TRUNCATED && bad == 0);
    wr_u64(buf + 16, n);
    buf[0] = 'X';
    CHECK(load_bytes(buf, n, &bad) == GRIMC_E_MAGIC && bad == 0);
    buf[0] = 'G';
    wr_u64(buf + GRIMC_BLOB_HEADER_BYTES + 8, n); /* entry 0 too long */
    reseal(buf, n);
    CHECK(load_bytes(buf, n, &bad) == GRIMC_E_BOUNDS && bad == 0);
    build_fixture(buf);
    buf[200] ^= 4; /* one payload bit */
    CHECK(load_bytes(buf, n, &bad) == GRIMC_E_CHECKSUM && bad == 0);

    grimc_blob b;
    char missing[4200];
    snprintf(missing, sizeof missing, "%s/no/such/file.blob", scratch_dir);
    CHECK(grimc_blob_load(missing, &b) == GRIMC_E_IO);
    CHECK(grimc_blob_load(NULL, &b) == GRIMC_E_ARG);
    CHECK(grimc_blob_load(scratch_dir, &b) != GRIMC_OK); /* a directory */
    CHECK(b.base == NULL && b.owned == NULL);
    grimc_blob_free(NULL);
    grimc_aligned_free(buf);
}

/* ---- blobs from the Python writer */

static const char *python_blob_path;

static void test_python_written_blob(void) {
    grimc_blob b;
    int rc = grimc_blob_load(python_blob_path, &b);
    CHECK(rc == GRIMC_OK);
    if (rc == GRIMC_OK) {
        CHECK(verify_fixture(&b) == 0);
        /* Both writers must produce identical bytes. */
        unsigned char *buf = new_buf();
        size_t n = build_fixture(buf);
        CHECK(b.size == n && memcmp(b.base, buf, n) == 0);
        grimc_aligned_free(buf);
    }
    grimc_blob_free(&b);
}

#ifdef GRIMC_TEST_BLOB_PATH
static void test_incbin_view(void) {
    size_t n = (size_t)(fixture_blob_end - fixture_blob_start);
    CHECK((uintptr_t)fixture_blob_start % 64 == 0);
    grimc_blob b;
    CHECK(grimc_blob_view(fixture_blob_start, n, &b) == GRIMC_OK);
    CHECK(verify_fixture(&b) == 0);
    CHECK(b.base == fixture_blob_start);
    grimc_blob_free(&b);
}
#endif

int main(int argc, char **argv) {
    if (argc > 1) {
        scratch_dir = argv[1];
    }
    RUN(test_view_good);
    RUN(test_view_truncated_or_long);
    RUN(test_view_bad_header);
    RUN(test_view_entry_out_of_range);
    RUN(test_view_unaligned_base);
    RUN(test_strerror);
    RUN(test_checksum);
    RUN(test_sha256);
    RUN(test_bind);
    RUN(test_load_files);
    if (argc > 2) {
        python_blob_path = argv[2];
        RUN(test_python_written_blob);
    }
#ifdef GRIMC_TEST_BLOB_PATH
    RUN(test_incbin_view);
#endif
    return TEST_REPORT();
}
