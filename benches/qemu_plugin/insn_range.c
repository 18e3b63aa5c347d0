/*
 * insn_range.c - a qemu TCG plugin that counts guest instructions executed
 * inside given address ranges (the kernel functions of a grimc harness).
 *
 *   qemu-aarch64 -plugin ./libinsn_range.so,ranges=RANGES.txt,out=COUNTS.txt ./prog
 *
 * RANGES.txt has one range per line: "<start-hex> <end-hex> <name>" with end
 * exclusive. COUNTS.txt gets one line per range: "<name> <count>", then
 * "total <count>". Counting is done at translation time: each translation
 * block gets one inline add per range it touches, of the number of its
 * instructions inside that range, so the count is exact (a block runs to its
 * end in user mode) and deterministic, and costs almost nothing at run time.
 * Inline adds are not atomic: count single-threaded guests only.
 *
 * Debian 12's qemu 7.2 ships no qemu-plugin.h, so the few API entry points
 * used here are declared below, as in qemu 7.2's include/qemu/qemu-plugin.h
 * (plugin API version 1; the functions used are unchanged up to qemu 8.x).
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the subset of qemu-plugin.h this plugin needs ---- */
#define QEMU_PLUGIN_EXPORT __attribute__((visibility("default")))
typedef uint64_t qemu_plugin_id_t;
typedef struct {
    const char *target_name;
    struct {
        int min;
        int cur;
    } version;
    bool system_emulation;
    union {
        struct {
            int smp_vcpus;
            int max_vcpus;
        } system;
    };
} qemu_info_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op,
                                              void *ptr, uint64_t imm);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
void qemu_plugin_outs(const char *string);

QEMU_PLUGIN_EXPORT int qemu_plugin_version = 1;
QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                           char **argv);

/* ---- the plugin ---- */
enum { MAX_RANGES = 4096, NAME_LEN = 128 };

typedef struct {
    uint64_t start, end; /* [start, end) */
    char name[NAME_LEN];
    uint64_t count; /* updated by TCG-generated inline adds */
} range_t;

static range_t ranges[MAX_RANGES];
static int nranges;
static char out_path[4096];

/* The range holding `addr`, or -1 (ranges are few: a linear scan at translation time is fine). */
static int find_range(uint64_t addr) {
    for (int i = 0; i < nranges; ++i)
        if (addr >= ranges[i].start && addr < ranges[i].end) return i;
    return -1;
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    int hit[64];
    uint64_t per[64];
    int nhit = 0;
    for (size_t i = 0; i < n; ++i) {
        int r = find_range(qemu_plugin_insn_vaddr(qemu_plugin_tb_get_insn(tb, i)));
        if (r < 0) continue;
        int j = 0;
        while (j < nhit && hit[j] != r) ++j;
        if (j == nhit) {
            if (nhit == 64) continue; /* cannot happen: a block spans a few functions at most */
            hit[nhit] = r;
            per[nhit++] = 0;
        }
        per[j] += 1;
    }
    for (int j = 0; j < nhit; ++j)
        qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64,
                                                 &ranges[hit[j]].count, per[j]);
}

static void on_exit(qemu_plugin_id_t id, void *userdata) {
    (void)id;
    (void)userdata;
    uint64_t total = 0;
    FILE *f = out_path[0] ? fopen(out_path, "w") : NULL;
    char line[NAME_LEN + 64];
    for (int i = 0; i <= nranges; ++i) {
        if (i < nranges) {
            total += ranges[i].count;
            snprintf(line, sizeof line, "%s %" PRIu64 "\n", ranges[i].name, ranges[i].count);
        } else {
            snprintf(line, sizeof line, "total %" PRIu64 "\n", total);
        }
        if (f) fputs(line, f);
        else qemu_plugin_outs(line);
    }
    if (f) fclose(f);
}

static int load_ranges(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "insn_range: cannot open ranges file %s\n", path);
        return -1;
    }
    char name[NAME_LEN];
    uint64_t start, end;
    while (nranges < MAX_RANGES &&
           fscanf(f, "%" SCNx64 " %" SCNx64 " %127s", &start, &end, name) == 3) {
        if (end <= start) continue;
        ranges[nranges].start = start;
        ranges[nranges].end = end;
        snprintf(ranges[nranges].name, NAME_LEN, "%s", name);
        ranges[nranges].count = 0;
        ++nranges;
    }
    int bad = !feof(f);
    fclose(f);
    if (bad || nranges == 0) {
        fprintf(stderr, "insn_range: %s: expected lines '<start-hex> <end-hex> <name>'\n", path);
        return -1;
    }
    return 0;
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                           char **argv) {
    (void)info;
    const char *ranges_path = NULL;
    for (int i = 0; i < argc; ++i) {
        if (strncmp(argv[i], "ranges=", 7) == 0) ranges_path = argv[i] + 7;
        else if (strncmp(argv[i], "out=", 4) == 0) snprintf(out_path, sizeof out_path, "%s", argv[i] + 4);
        else {
            fprintf(stderr, "insn_range: unknown argument '%s' (expected ranges=FILE, out=FILE)\n",
                    argv[i]);
            return -1;
        }
    }
    if (!ranges_path) {
        fprintf(stderr, "insn_range: missing ranges=FILE\n");
        return -1;
    }
    if (load_ranges(ranges_path) != 0) return -1;
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, on_exit, NULL);
    return 0;
}
