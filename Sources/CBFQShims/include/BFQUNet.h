#ifndef BFQ_UNET_H
#define BFQ_UNET_H
/// Elementwise and data-movement kernels of the reference UNet. Each has AVX2 and portable scalar code that give the
/// same bits for finite inputs (the same operations in the same order, lane by lane) and NaN where the other gives NaN;
/// `vectorized` 0 forces the scalar code.
#include <stddef.h>

/// exp(x) for each of `n` values in place (Cephes-style range reduction and polynomial, about 1 ulp; inputs are
/// clamped to [-87.3, 88.3], so every result is a normal finite f32).
void bfq_exp(float *x, size_t n, int vectorized);

/// Softmax of each of `rows` rows of `columns` values (row starts `stride` apart), in place: exp(x - max) / sum, the
/// sum taken in eight interleaved lanes added pairwise.
void bfq_softmax_rows(float *x, size_t rows, size_t columns, size_t stride, int vectorized);

/// x * sigmoid(x) for each of `n` values in place.
void bfq_silu(float *x, size_t n, int vectorized);

/// out[i] = hidden[i] * gelu(gate[i]) with the exact (erf) GELU, erf by Abramowitz-Stegun 7.1.26 as PyTorch's
/// vectorised CPU kernels compute it.
void bfq_geglu(const float *hidden, const float *gate, float *out, size_t n, int vectorized);

/// One column block of im2col for a convolution over images stored channel-major: channel c of image b starts at
/// input + c * channel_stride + b * height * width. Writes rows (c - first_channel) * k * k + ky * k + kx for
/// channels [first_channel, first_channel + channels), columns j - first_column for output positions
/// j in [first_column, first_column + columns) counted over all images (j = b * out_h * out_w + y * out_w + x),
/// into `cols` (row length `columns`); zero where the kernel reaches into the padding.
void bfq_im2col(const float *input, size_t channel_stride, size_t height, size_t width, size_t kernel, size_t stride,
                size_t pad, size_t out_h, size_t out_w, size_t first_channel, size_t channels, size_t first_column,
                size_t columns, float *cols);
#endif
