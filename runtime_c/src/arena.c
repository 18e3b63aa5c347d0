/* Aligned allocation and the greedy-by-size arena planner. */
#ifndef _POSIX_C_SOURCE /* also inlined after _GNU_SOURCE by the codegen */
#define _POSIX_C_SOURCE 200809L
#endif

#include "grimc_rt.h"

#include <stdint.h>
#include <stdlib.h>

static int arena_is_pow2(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

GRIMC_RT_API void *grimc_aligned_alloc(size_t alignment, size_t size) {
    if (alignment == 0) {
        alignment = GRIMC_ALIGN;
    }
    if (!arena_is_pow2(alignment)) {
        return NULL;
    }
    /* posix_memalign (not C11 aligned_alloc): it needs no size multiple of
     * the alignment and exists on older Android API levels. */
    if (alignment < sizeof(void *)) {
        alignment = sizeof(void *);
    }
    void *p = NULL;
    if (posix_memalign(&p, alignment, size ? size : 1) != 0) {
        return NULL;
    }
    return p;
}

GRIMC_RT_API void grimc_aligned_free(void *ptr) { free(ptr); }

/* Work record: a buffer in placement order. */
typedef struct {
    size_t size;
    int32_t first, last;
    size_t index;
} arena_item;

/* Largest first; ties by first_op then index for a deterministic plan. */
static int arena_cmp_item(const void *pa, const void *pb) {
    const arena_item *a = pa, *b = pb;
    if (a->size != b->size) {
        return a->size > b->size ? -1 : 1;
    }
    if (a->first != b->first) {
        return a->first < b->first ? -1 : 1;
    }
    return (a->index > b->index) - (a->index < b->index);
}

/* Already placed buffer, kept in a list sorted by offset. */
typedef struct {
    size_t offset, end;
    int32_t first, last;
} arena_placed;

/* Round x up to a multiple of align (a power of two); SIZE_MAX on overflow. */
static size_t arena_align_up(size_t x, size_t align) {
    if (x > SIZE_MAX - (align - 1)) {
        return SIZE_MAX;
    }
    return (x + align - 1) & ~(align - 1);
}

/* Lowest aligned offset where `it` fits between the placed buffers that are
 * live at the same time (placed[] is sorted by offset). */
static size_t arena_find_offset(const arena_item *it,
                                const arena_placed *placed, size_t nplaced,
                                size_t alignment) {
    size_t cand = 0;
    for (size_t j = 0; j < nplaced; j++) {
        const arena_placed *p = &placed[j];
        if (p->last < it->first || p->first > it->last || p->end == p->offset) {
            continue; /* disjoint in time, or empty */
        }
        if (p->offset >= cand && p->offset - cand >= it->size) {
            break; /* the gap before p is big enough */
        }
        if (p->end > cand) {
            cand = arena_align_up(p->end, alignment);
            if (cand == SIZE_MAX) {
                return SIZE_MAX;
            }
        }
    }
    return cand;
}

GRIMC_RT_API size_t grimc_arena_plan(const grimc_buffer_life *bufs, size_t n,
                        size_t alignment, size_t *offsets_out) {
    if (alignment == 0) {
        alignment = GRIMC_ALIGN;
    }
    if (!arena_is_pow2(alignment)) {
        return SIZE_MAX;
    }
    if (n == 0) {
        return 0;
    }
    if (bufs == NULL || offsets_out == NULL ||
        n > SIZE_MAX / sizeof(arena_item) ||
        n > SIZE_MAX / sizeof(arena_placed)) {
        return SIZE_MAX;
    }
    arena_item *items = malloc(n * sizeof *items);
    arena_placed *placed = malloc(n * sizeof *placed);
    size_t peak = SIZE_MAX;
    if (items == NULL || placed == NULL) {
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (bufs[i].first_op > bufs[i].last_op) {
            goto done;
        }
        items[i] = (arena_item){bufs[i].size, bufs[i].first_op,
                                bufs[i].last_op, i};
    }
    qsort(items, n, sizeof *items, arena_cmp_item);

    size_t top = 0;
    for (size_t i = 0; i < n; i++) {
        const arena_item *it = &items[i];
        size_t off = arena_find_offset(it, placed, i, alignment);
        if (off == SIZE_MAX || it->size > SIZE_MAX - off) {
            goto done;
        }
        offsets_out[it->index] = off;
        /* Insert keeping placed[] sorted by offset (stable for equal). */
        size_t k = i;
        while (k > 0 && placed[k - 1].offset > off) {
            placed[k] = placed[k - 1];
            k--;
        }
        placed[k] = (arena_placed){off, off + it->size, it->first, it->last};
        if (off + it->size > top) {
            top = off + it->size;
        }
    }
    peak = top;
done:
    free(items);
    free(placed);
    return peak;
}

GRIMC_RT_API size_t grimc_arena_live_peak(const grimc_buffer_life *bufs, size_t n) {
    size_t best = 0;
    /* The live sum only changes at a first_op, so checking those suffices. */
    for (size_t i = 0; i < n; i++) {
        int32_t op = bufs[i].first_op;
        size_t sum = 0;
        for (size_t j = 0; j < n; j++) {
            if (bufs[j].first_op <= op && op <= bufs[j].last_op) {
                sum = bufs[j].size > SIZE_MAX - sum ? SIZE_MAX
                                                    : sum + bufs[j].size;
            }
        }
        if (sum > best) {
            best = sum;
        }
    }
    return best;
}
