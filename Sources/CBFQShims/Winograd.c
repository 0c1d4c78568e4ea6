/* Winograd F(2x2, 3x3) transforms (see BFQUNet.h). B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],
 * G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1], A^T = [1 1 1 0; 0 1 -1 -1]. Each value is computed alone, in a fixed
 * order, so the results do not depend on how the work is split. */
#include "include/BFQUNet.h"
#include <string.h>

#pragma STDC FP_CONTRACT OFF

void bfq_winograd_input(const float *input, size_t channel_stride, size_t batch, size_t height, size_t width,
                        size_t first_channel, size_t channels, size_t in_channels, float *v, float *scratch) {
    const size_t tiles_h = (height + 1) / 2, tiles_w = (width + 1) / 2, tiles = batch * tiles_h * tiles_w;
    const size_t padded = 2 * tiles_w + 2; /* columns -1 .. 2 tiles_w, zero outside the image */
    float *rows[4], *r[4];
    for (size_t i = 0; i < 4; i++) rows[i] = scratch + i * padded, r[i] = scratch + (4 + i) * padded;
    for (size_t c = first_channel; c < first_channel + channels; c++) {
        for (size_t b = 0; b < batch; b++) {
            const float *image = input + c * channel_stride + b * height * width;
            for (size_t ty = 0; ty < tiles_h; ty++) {
                for (size_t i = 0; i < 4; i++) {
                    const ptrdiff_t y = (ptrdiff_t)(2 * ty + i) - 1;
                    memset(rows[i], 0, padded * sizeof(float));
                    if (y >= 0 && y < (ptrdiff_t)height) memcpy(rows[i] + 1, image + (size_t)y * width, width * sizeof(float));
                }
                /* B^T d: combine the four rows, every column at once. */
                for (size_t x = 0; x < padded; x++) {
                    r[0][x] = rows[0][x] - rows[2][x];
                    r[1][x] = rows[1][x] + rows[2][x];
                    r[2][x] = rows[2][x] - rows[1][x];
                    r[3][x] = rows[1][x] - rows[3][x];
                }
                /* (B^T d) B: combine columns 2 tx .. 2 tx + 3 of each row. */
                const size_t t0 = (b * tiles_h + ty) * tiles_w;
                for (size_t i = 0; i < 4; i++) {
                    float *v0 = v + ((4 * i + 0) * in_channels + c) * tiles + t0;
                    float *v1 = v + ((4 * i + 1) * in_channels + c) * tiles + t0;
                    float *v2 = v + ((4 * i + 2) * in_channels + c) * tiles + t0;
                    float *v3 = v + ((4 * i + 3) * in_channels + c) * tiles + t0;
                    const float *row = r[i];
                    for (size_t tx = 0; tx < tiles_w; tx++) {
                        const float *d = row + 2 * tx;
                        v0[tx] = d[0] - d[2];
                        v1[tx] = d[1] + d[2];
                        v2[tx] = d[2] - d[1];
                        v3[tx] = d[1] - d[3];
                    }
                }
            }
        }
    }
}

void bfq_winograd_weights(const float *weight, size_t in_channels, size_t block_first, size_t block_outs,
                          size_t first_out, size_t outs, float *u, float *scratch) {
    float *g[9], *row[16];
    for (size_t k = 0; k < 9; k++) g[k] = scratch + k * in_channels;
    for (size_t o = first_out; o < first_out + outs; o++) {
        /* The output channel's kernels as nine rows over the inputs, so the transform below runs across inputs. */
        const float *kernels = weight + o * in_channels * 9;
        for (size_t c = 0; c < in_channels; c++)
            for (size_t k = 0; k < 9; k++) g[k][c] = kernels[c * 9 + k];
        for (size_t xi = 0; xi < 16; xi++) row[xi] = u + (xi * block_outs + (o - block_first)) * in_channels;
        /* The rows written and the scratch rows read never overlap. */
#pragma clang loop vectorize(assume_safety)
        for (size_t c = 0; c < in_channels; c++) {
            float t[4][3];
            for (size_t j = 0; j < 3; j++) { /* G g: rows of the kernel combined, per column */
                t[0][j] = g[j][c];
                t[1][j] = ((g[j][c] + g[3 + j][c]) + g[6 + j][c]) * 0.5f;
                t[2][j] = ((g[j][c] - g[3 + j][c]) + g[6 + j][c]) * 0.5f;
                t[3][j] = g[6 + j][c];
            }
            for (size_t i = 0; i < 4; i++) { /* (G g) G^T */
                row[4 * i + 0][c] = t[i][0];
                row[4 * i + 1][c] = ((t[i][0] + t[i][1]) + t[i][2]) * 0.5f;
                row[4 * i + 2][c] = ((t[i][0] - t[i][1]) + t[i][2]) * 0.5f;
                row[4 * i + 3][c] = t[i][2];
            }
        }
    }
}

void bfq_winograd_output(const float *m, const float *bias, size_t out_channels, size_t batch, size_t height,
                         size_t width, size_t first_out, size_t outs, float *output) {
    const size_t tiles_h = (height + 1) / 2, tiles_w = (width + 1) / 2, tiles = batch * tiles_h * tiles_w;
    for (size_t o = first_out; o < first_out + outs; o++) {
        const float *mo[16];
        for (size_t xi = 0; xi < 16; xi++) mo[xi] = m + (xi * out_channels + o) * tiles;
        const float b0 = bias ? bias[o] : 0.0f;
        for (size_t b = 0; b < batch; b++) {
            float *image = output + o * batch * height * width + b * height * width;
            for (size_t ty = 0; ty < tiles_h; ty++) {
                float *top = image + 2 * ty * width;
                float *bottom = 2 * ty + 1 < height ? top + width : NULL;
                const size_t t0 = (b * tiles_h + ty) * tiles_w;
                for (size_t tx = 0; tx < tiles_w; tx++) {
                    const size_t t = t0 + tx;
                    float s[2][4]; /* A^T M */
                    for (size_t j = 0; j < 4; j++) {
                        s[0][j] = (mo[j][t] + mo[4 + j][t]) + mo[8 + j][t];
                        s[1][j] = (mo[4 + j][t] - mo[8 + j][t]) - mo[12 + j][t];
                    }
                    const size_t x = 2 * tx;
                    top[x] = ((s[0][0] + s[0][1]) + s[0][2]) + b0;
                    if (x + 1 < width) top[x + 1] = ((s[0][1] - s[0][2]) - s[0][3]) + b0;
                    if (bottom) {
                        bottom[x] = ((s[1][0] + s[1][1]) + s[1][2]) + b0;
                        if (x + 1 < width) bottom[x + 1] = ((s[1][1] - s[1][2]) - s[1][3]) + b0;
                    }
                }
            }
        }
    }
}
