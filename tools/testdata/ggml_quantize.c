/* Quantizes rows of f32 with ggml's own ggml_quantize_chunk and no importance matrix (the reference quantizers
 * llama-quantize runs without --imatrix), for tools/testdata/gguf_cases.py. Built by that script against a ggml
 * source tree (stable-diffusion.cpp's submodule); never part of bfq.
 *
 *     ggml_quantize TYPE N_PER_ROW < rows.f32 > blocks.bin     (TYPE: a ggml type name, e.g. q4_K)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ggml.h"

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: ggml_quantize TYPE N_PER_ROW < f32 > blocks\n"); return 64; }
    int type = -1;
    for (int t = 0; t < GGML_TYPE_COUNT; t++) {
        const char *name = ggml_type_name((enum ggml_type)t);
        if (name && strcmp(name, argv[1]) == 0) type = t;
    }
    if (type < 0) { fprintf(stderr, "unknown type %s\n", argv[1]); return 64; }
    long n_per_row = atol(argv[2]);
    size_t cap = 1 << 20, n = 0;
    float *x = malloc(cap * sizeof(float));
    size_t got;
    while ((got = fread(x + n, sizeof(float), cap - n, stdin)) > 0) {
        n += got;
        if (n == cap) x = realloc(x, (cap *= 2) * sizeof(float));
    }
    long rows = (long)n / n_per_row;
    void *out = malloc(ggml_row_size((enum ggml_type)type, n_per_row) * rows);
    size_t bytes = ggml_quantize_chunk((enum ggml_type)type, x, out, 0, rows, n_per_row, NULL);
    fwrite(out, 1, bytes, stdout);
    return 0;
}
