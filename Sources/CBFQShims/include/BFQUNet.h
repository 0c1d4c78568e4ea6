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

/// Winograd F(2x2, 3x3) (Lavin and Gray 2016) for 3x3 convolutions with stride 1 and padding 1: the output in 2x2
/// tiles, tile t = (b * tiles_h + ty) * tiles_w + tx with tiles_h = (height + 1) / 2, tiles_w = (width + 1) / 2,
/// each from a 4x4 input patch whose 16 transformed values xi = 4i + j are multiplied by 16 transformed weight
/// matrices. Layouts, row-major: V[xi][channel][tile], U[xi][out][in], M[xi][out][tile].

/// V = B^T d B for channels [first_channel, first_channel + channels) of `input` (channel c of image b at
/// input + c * channel_stride + b * height * width), each patch d starting at (2 ty - 1, 2 tx - 1), zero outside.
/// `v` points at V[0][0][0] (row length `tiles`, `in_channels` rows per xi); `scratch` holds 8 x (2 tiles_w + 2)
/// floats.
void bfq_winograd_input(const float *input, size_t channel_stride, size_t batch, size_t height, size_t width,
                        size_t first_channel, size_t channels, size_t in_channels, float *v, float *scratch);

/// U = G g G^T for outputs [first_out, first_out + outs) of `weight` [out_channels][in_channels][3][3], all 16 values,
/// into the U of a block of `block_outs` outputs from `block_first`: U[xi][o - block_first][c] at `u`. `scratch` holds
/// 9 x in_channels floats.
void bfq_winograd_weights(const float *weight, size_t in_channels, size_t block_first, size_t block_outs,
                          size_t first_out, size_t outs, float *u, float *scratch);

/// Y = A^T M A (+ bias) for outputs [first_out, first_out + outs): writes the output channels (channel o of image b
/// at output + o * batch * height * width + b * height * width), dropping a tile's row or column beyond the image.
void bfq_winograd_output(const float *m, const float *bias, size_t out_channels, size_t batch, size_t height,
                         size_t width, size_t first_out, size_t outs, float *output);
#endif
