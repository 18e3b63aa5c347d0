/* libFuzzer target: the weight blob loader of one generated model, and the
 * model itself whenever a mutated blob is accepted.
 *
 * Build together with the generated <prefix>.c of a small BCR model whose
 * prefix is `fuzzmodel` (tests/adversarial/test_fuzz.py does it):
 *
 *   clang-19 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
 *     -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION -march=x86-64-v3 -O1 -g \
 *     -I DIR DIR/fuzzmodel.c fuzz_blob.c -lm -o fuzz_blob
 *
 * FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION skips only the content checksum,
 * so mutations reach the structural checks, the pinned index arrays and the
 * kernels; nothing else changes. Each input is written to a file because
 * _create takes a path, as real callers do. */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fuzzmodel.h"

static char blob_path[4096];
static float *inputs[16];
static float *outputs[16];

static void remove_blob(void) { unlink(blob_path); }

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *dir = getenv("TMPDIR");
    snprintf(blob_path, sizeof blob_path, "%s/grimc_fuzz_%ld.bin",
             dir != NULL ? dir : "/tmp", (long)getpid());
    atexit(remove_blob);
    if (fuzzmodel_num_inputs() > 16 || fuzzmodel_num_outputs() > 16) {
        abort();
    }
    for (int i = 0; i < fuzzmodel_num_inputs(); i++) {
        size_t n = fuzzmodel_input(i)->numel;
        inputs[i] = malloc(n * sizeof(float));
        for (size_t k = 0; k < n; k++) {
            inputs[i][k] = (float)(k % 7) * 0.25f - 0.75f;
        }
    }
    for (int i = 0; i < fuzzmodel_num_outputs(); i++) {
        outputs[i] = malloc(fuzzmodel_output(i)->numel * sizeof(float));
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FILE *f = fopen(blob_path, "wb");
    if (f == NULL || fwrite(data, 1, size, f) != size || fclose(f) != 0) {
        abort(); /* the scratch file must work, or nothing is tested */
    }
    fuzzmodel *m = NULL;
    int rc = fuzzmodel_create(blob_path, 1, &m);
    if (rc == 0) {
        if (m == NULL || fuzzmodel_run(m, (const float *const *)inputs, outputs) != 0) {
            abort();
        }
        fuzzmodel_destroy(m);
    } else if (m != NULL || rc > 0) {
        abort(); /* a failed create must return a status and no model */
    }
    return 0;
}
