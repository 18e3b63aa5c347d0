/*
 * grimc_incbin.h - embed a binary file (a GRIMCWB1 weight blob) in an ELF
 * object with the assembler's .incbin, for x86-64 and aarch64.
 *
 *   GRIMC_INCBIN(model_weights, "model.weights.bin");
 *   ...
 *   grimc_blob b;
 *   grimc_blob_view(model_weights_start,
 *                   (size_t)(model_weights_end - model_weights_start), &b);
 *
 * Use at file scope, once per symbol. `path` must be a string literal; a
 * relative path is resolved by the assembler from the compiler's working
 * directory or from include paths given with -Wa,-I<dir>. The data goes to
 * .rodata, starts 64-byte aligned (what grimc_blob_view requires) and is
 * bracketed by sym_start / sym_end. The symbols are global but hidden so a
 * shared library neither exports them nor pays a GOT indirection. The
 * compiler cannot see the dependency on the file: the build must rebuild
 * the object when the blob changes.
 */
#ifndef GRIMC_INCBIN_H
#define GRIMC_INCBIN_H

/* "%object" (not "@object") because '@' starts a comment on some ARM
 * assemblers; both GNU as and clang accept '%' on x86-64 and aarch64. */
#define GRIMC_INCBIN(sym, path)                                              \
    __asm__(".pushsection .rodata, \"a\"\n"                                  \
            ".balign 64\n"                                                   \
            ".globl " #sym "_start\n"                                        \
            ".hidden " #sym "_start\n"                                       \
            ".type " #sym "_start, %object\n"                                \
            #sym "_start:\n"                                                 \
            ".incbin \"" path "\"\n"                                         \
            ".globl " #sym "_end\n"                                          \
            ".hidden " #sym "_end\n"                                         \
            #sym "_end:\n"                                                   \
            ".size " #sym "_start, " #sym "_end - " #sym "_start\n"          \
            ".popsection\n");                                                \
    extern __attribute__((visibility("hidden"))) const unsigned char         \
        sym##_start[];                                                       \
    extern __attribute__((visibility("hidden"))) const unsigned char         \
        sym##_end[]

#endif /* GRIMC_INCBIN_H */
