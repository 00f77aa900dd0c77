/* Layer normalisation of short rows: the channels of one pixel of a channels-last feature map.
 *
 * y[p, c] = (x[p, c] - mean_p) * rstd_p * weight[c] + bias[c],
 * mean_p and the (biased) variance over the C values of row p, rstd_p = 1 / sqrt(var_p + eps).
 *
 * Why this exists: PyTorch's CPU layer norm handles one row at a time, with its reductions
 * along the row. With 8 channels a row is a quarter of an AVX-512 register, and the kernel is
 * bound by per-row overhead: on (2, 8, 512, 512) it takes 8-12 ms against under 1 ms for an
 * element-wise add over the same memory (docs/precision.md). Here BLOCK rows are handled
 * together, so that the compiler vectorises the statistics across rows (one lane per row)
 * and the row loop is unrolled for each supported C.
 *
 * The backward (for training) computes dL/dx per pixel from the saved mean and rstd and sums
 * dL/dweight and dL/dbias over the pixels, per thread in double.
 *
 * A bfloat16 variant (inference only, any channel count up to BF16_MAX_CHANNELS) reads and
 * writes bfloat16 and computes in float32: under CPU bfloat16 autocast PyTorch would convert the
 * bfloat16 feature map to float32, normalise it and convert it back for the next convolution,
 * three passes where this is one.
 *
 * Built by amsnet.native on first use (cc -O3 -march=native -fopenmp); the threads are
 * PyTorch's OpenMP runtime (the same libgomp.so.1, shared by soname) and the count is passed
 * in by the caller (torch.get_num_threads()).
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define BLOCK 16

/* The mean and reciprocal standard deviation of BLOCK rows of C floats, vectorised across the
 * rows (one lane per row). */
#define DEFINE_BLOCK_STATISTICS(C)                                                            \
    static inline void block_statistics_##C(const float *restrict xb, float *restrict mean,   \
                                            float *restrict rstd, float eps) {                \
        _Pragma("omp simd")                                                                   \
        for (int p = 0; p < BLOCK; ++p) {                                                     \
            float sum = 0.f;                                                                  \
            for (int c = 0; c < C; ++c) sum += xb[p * C + c];                                 \
            mean[p] = sum * (1.f / C);                                                        \
        }                                                                                     \
        _Pragma("omp simd")                                                                   \
        for (int p = 0; p < BLOCK; ++p) {                                                     \
            float squares = 0.f;                                                              \
            for (int c = 0; c < C; ++c) {                                                     \
                const float d = xb[p * C + c] - mean[p];                                      \
                squares += d * d;                                                             \
            }                                                                                 \
            rstd[p] = 1.f / sqrtf(squares * (1.f / C) + eps);                                 \
        }                                                                                     \
    }

DEFINE_BLOCK_STATISTICS(4)
DEFINE_BLOCK_STATISTICS(8)
DEFINE_BLOCK_STATISTICS(16)
DEFINE_BLOCK_STATISTICS(32)

#define DEFINE_NORM(C)                                                                        \
    static void one_row_##C(const float *restrict x, float *restrict y,                       \
                            const float *restrict weight, const float *restrict bias,         \
                            float eps, float *mean_out, float *rstd_out) {                    \
        float sum = 0.f;                                                                      \
        for (int c = 0; c < C; ++c) sum += x[c];                                              \
        const float mean = sum * (1.f / C);                                                   \
        float squares = 0.f;                                                                  \
        for (int c = 0; c < C; ++c) squares += (x[c] - mean) * (x[c] - mean);                \
        const float rstd = 1.f / sqrtf(squares * (1.f / C) + eps);                            \
        for (int c = 0; c < C; ++c) y[c] = (x[c] - mean) * rstd * weight[c] + bias[c];        \
        if (mean_out != NULL) {                                                               \
            *mean_out = mean;                                                                 \
            *rstd_out = rstd;                                                                 \
        }                                                                                     \
    }                                                                                         \
    static void norm_##C(const float *restrict x, float *restrict y, int64_t rows,            \
                         const float *restrict weight, const float *restrict bias, float eps, \
                         float *restrict mean_out, float *restrict rstd_out, int threads) {   \
        const int64_t blocks = rows / BLOCK;                                                  \
        _Pragma("omp parallel for schedule(static) num_threads(threads)")                     \
        for (int64_t k = 0; k < blocks; ++k) {                                                \
            const float *restrict xb = x + k * BLOCK * C;                                     \
            float *restrict yb = y + k * BLOCK * C;                                           \
            float mean[BLOCK], rstd[BLOCK];                                                   \
            block_statistics_##C(xb, mean, rstd, eps);                                        \
            for (int p = 0; p < BLOCK; ++p)                                                   \
                for (int c = 0; c < C; ++c)                                                   \
                    yb[p * C + c] = (xb[p * C + c] - mean[p]) * rstd[p] * weight[c] + bias[c]; \
            if (mean_out != NULL)                                                             \
                for (int p = 0; p < BLOCK; ++p) {                                             \
                    mean_out[k * BLOCK + p] = mean[p];                                        \
                    rstd_out[k * BLOCK + p] = rstd[p];                                        \
                }                                                                             \
        }                                                                                     \
        for (int64_t p = blocks * BLOCK; p < rows; ++p)                                       \
            one_row_##C(x + p * C, y + p * C, weight, bias, eps,                              \
                        mean_out ? mean_out + p : NULL, rstd_out ? rstd_out + p : NULL);      \
    }                                                                                         \
    /* The gradients: with n = (x - mean) rstd and g = dL/dy,                              \
     * dL/dx = rstd (g w - avg_c(g w) - n avg_c(g w n)), dL/dweight = sum_p g n,             \
     * dL/dbias = sum_p g. The sums over pixels are kept per thread in double, then added. */ \
    static void backward_##C(const float *restrict x, const float *restrict grad_y,          \
                             const float *restrict weight, const float *restrict mean,       \
                             const float *restrict rstd, float *restrict grad_x,             \
                             float *restrict grad_weight, float *restrict grad_bias,         \
                             int64_t rows, int threads) {                                     \
        double total_w[C], total_b[C];                                                        \
        for (int c = 0; c < C; ++c) total_w[c] = total_b[c] = 0.0;                            \
        const int64_t blocks = (rows + BLOCK - 1) / BLOCK;                                    \
        _Pragma("omp parallel num_threads(threads)")                                          \
        {                                                                                     \
            double local_w[C], local_b[C];                                                    \
            for (int c = 0; c < C; ++c) local_w[c] = local_b[c] = 0.0;                        \
            _Pragma("omp for schedule(static)")                                               \
            for (int64_t k = 0; k < blocks; ++k) {                                            \
                const int64_t first = k * BLOCK;                                              \
                const int count = rows - first < BLOCK ? (int)(rows - first) : BLOCK;         \
                float block_w[C], block_b[C];                                                 \
                for (int c = 0; c < C; ++c) block_w[c] = block_b[c] = 0.f;                    \
                for (int p = 0; p < count; ++p) {                                             \
                    const float *restrict xr = x + (first + p) * C;                           \
                    const float *restrict gr = grad_y + (first + p) * C;                      \
                    float *restrict out = grad_x + (first + p) * C;                           \
                    const float m = mean[first + p], r = rstd[first + p];                     \
                    float n[C], gw[C], sum_gw = 0.f, sum_gwn = 0.f;                           \
                    for (int c = 0; c < C; ++c) {                                             \
                        n[c] = (xr[c] - m) * r;                                               \
                        gw[c] = gr[c] * weight[c];                                            \
                        sum_gw += gw[c];                                                      \
                        sum_gwn += gw[c] * n[c];                                              \
                        block_w[c] += gr[c] * n[c];                                           \
                        block_b[c] += gr[c];                                                  \
                    }                                                                         \
                    sum_gw *= 1.f / C;                                                        \
                    sum_gwn *= 1.f / C;                                                       \
                    for (int c = 0; c < C; ++c) out[c] = r * (gw[c] - sum_gw - n[c] * sum_gwn); \
                }                                                                             \
                for (int c = 0; c < C; ++c) {                                                 \
                    local_w[c] += block_w[c];                                                 \
                    local_b[c] += block_b[c];                                                 \
                }                                                                             \
            }                                                                                 \
            _Pragma("omp critical")                                                           \
            for (int c = 0; c < C; ++c) {                                                     \
                total_w[c] += local_w[c];                                                     \
                total_b[c] += local_b[c];                                                     \
            }                                                                                 \
        }                                                                                     \
        for (int c = 0; c < C; ++c) {                                                         \
            grad_weight[c] = (float)total_w[c];                                               \
            grad_bias[c] = (float)total_b[c];                                                 \
        }                                                                                     \
    }

DEFINE_NORM(4)
DEFINE_NORM(8)
DEFINE_NORM(16)
DEFINE_NORM(32)

/* Returns 0 when done, 1 for a channel count without a kernel (the caller falls back).
 * mean and rstd (rows floats each) receive the statistics when not NULL (for the backward). */
int amsnet_channel_norm(const float *x, float *y, int64_t rows, int64_t channels,
                        const float *weight, const float *bias, float eps, float *mean,
                        float *rstd, int threads) {
    if (threads < 1) threads = 1;
    if ((mean == NULL) != (rstd == NULL)) return 2;
    switch (channels) {
        case 4: norm_4(x, y, rows, weight, bias, eps, mean, rstd, threads); return 0;
        case 8: norm_8(x, y, rows, weight, bias, eps, mean, rstd, threads); return 0;
        case 16: norm_16(x, y, rows, weight, bias, eps, mean, rstd, threads); return 0;
        case 32: norm_32(x, y, rows, weight, bias, eps, mean, rstd, threads); return 0;
        default: return 1;
    }
}

/* The gradients of amsnet_channel_norm from its saved mean and rstd: grad_x (rows x channels)
 * and grad_weight, grad_bias (channels each), all written. 0 when done, 1 as above. */
int amsnet_channel_norm_backward(const float *x, const float *grad_y, int64_t rows,
                                 int64_t channels, const float *weight, const float *mean,
                                 const float *rstd, float *grad_x, float *grad_weight,
                                 float *grad_bias, int threads) {
    if (threads < 1) threads = 1;
    switch (channels) {
        case 4: backward_4(x, grad_y, weight, mean, rstd, grad_x, grad_weight, grad_bias, rows, threads); return 0;
        case 8: backward_8(x, grad_y, weight, mean, rstd, grad_x, grad_weight, grad_bias, rows, threads); return 0;
        case 16: backward_16(x, grad_y, weight, mean, rstd, grad_x, grad_weight, grad_bias, rows, threads); return 0;
        case 32: backward_32(x, grad_y, weight, mean, rstd, grad_x, grad_weight, grad_bias, rows, threads); return 0;
        default: return 1;
    }
}

/* The channel counts with a kernel, for the Python side to check against. */
int amsnet_channel_norm_supports(int64_t channels) {
    return channels == 4 || channels == 8 || channels == 16 || channels == 32;
}

/* bfloat16 is the upper half of a float32. */
static inline float bf16_to_float(uint16_t value) {
    const uint32_t bits = (uint32_t)value << 16;
    float result;
    memcpy(&result, &bits, sizeof result);
    return result;
}

/* Round to nearest, ties to even, as PyTorch's conversion does; a NaN stays a (quiet) NaN. */
static inline uint16_t float_to_bf16(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x40u);
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return (uint16_t)(bits >> 16);
}

#define BF16_MAX_CHANNELS 4096

/* Stands in for an absent bias (Restormer's "BiasFree" norm). */
static const float no_bias[BF16_MAX_CHANNELS];

/* One row of the bfloat16 kernel; row holds its values converted to float32. With centre 0
 * the mean is not subtracted from the output (only from the variance): Restormer's "BiasFree"
 * norm, x * rstd * weight. */
static void bf16_row(const uint16_t *restrict x, uint16_t *restrict y, int64_t channels,
                     const float *restrict weight, const float *restrict bias, float eps,
                     int centre, float *restrict row) {
    float sum = 0.f;
#pragma omp simd reduction(+ : sum)
    for (int64_t c = 0; c < channels; ++c) {
        row[c] = bf16_to_float(x[c]);
        sum += row[c];
    }
    const float mean = sum / (float)channels;
    float squares = 0.f;
#pragma omp simd reduction(+ : squares)
    for (int64_t c = 0; c < channels; ++c) squares += (row[c] - mean) * (row[c] - mean);
    const float rstd = 1.f / sqrtf(squares / (float)channels + eps);
    const float shift = centre ? mean : 0.f;
#pragma omp simd
    for (int64_t c = 0; c < channels; ++c)
        y[c] = float_to_bf16((row[c] - shift) * rstd * weight[c] + bias[c]);
}

/* The short rows NAFNet has (4 to 32 channels) BLOCK at a time, as in the float32 kernel: the
 * block is converted to float32 first, then the statistics are vectorised across rows. */
#define DEFINE_NORM_BF16(C)                                                                   \
    static void norm_bf16_##C(const uint16_t *restrict x, uint16_t *restrict y, int64_t rows, \
                              const float *restrict weight, const float *restrict bias,       \
                              float eps, int centre, int threads) {                           \
        const int64_t blocks = rows / BLOCK;                                                  \
        _Pragma("omp parallel for schedule(static) num_threads(threads)")                     \
        for (int64_t k = 0; k < blocks; ++k) {                                                \
            const uint16_t *restrict xk = x + k * BLOCK * C;                                  \
            uint16_t *restrict yk = y + k * BLOCK * C;                                        \
            float xb[BLOCK * C], mean[BLOCK], rstd[BLOCK];                                    \
            for (int i = 0; i < BLOCK * C; ++i) xb[i] = bf16_to_float(xk[i]);                 \
            block_statistics_##C(xb, mean, rstd, eps);                                        \
            for (int p = 0; p < BLOCK; ++p) {                                                 \
                const float shift = centre ? mean[p] : 0.f;                                   \
                for (int c = 0; c < C; ++c)                                                   \
                    yk[p * C + c] = float_to_bf16((xb[p * C + c] - shift) * rstd[p] *         \
                                                      weight[c] +                             \
                                                  bias[c]);                                   \
            }                                                                                 \
        }                                                                                     \
        float row[C];                                                                         \
        for (int64_t p = blocks * BLOCK; p < rows; ++p)                                       \
            bf16_row(x + p * C, y + p * C, C, weight, bias, eps, centre, row);                \
    }

DEFINE_NORM_BF16(4)
DEFINE_NORM_BF16(8)
DEFINE_NORM_BF16(16)
DEFINE_NORM_BF16(32)

/* y = layer_norm(x) over rows of `channels` bfloat16 values, weight and bias float32; bias may
 * be NULL (no bias), centre 0 leaves the mean in the output (see bf16_row).
 * Returns 0 when done, 1 for a channel count outside 1..BF16_MAX_CHANNELS. */
int amsnet_channel_norm_bf16(const uint16_t *x, uint16_t *y, int64_t rows, int64_t channels,
                             const float *weight, const float *bias, float eps, int centre,
                             int threads) {
    if (threads < 1) threads = 1;
    if (channels < 1 || channels > BF16_MAX_CHANNELS) return 1;
    if (bias == NULL) bias = no_bias;
    switch (channels) {
        case 4: norm_bf16_4(x, y, rows, weight, bias, eps, centre, threads); return 0;
        case 8: norm_bf16_8(x, y, rows, weight, bias, eps, centre, threads); return 0;
        case 16: norm_bf16_16(x, y, rows, weight, bias, eps, centre, threads); return 0;
        case 32: norm_bf16_32(x, y, rows, weight, bias, eps, centre, threads); return 0;
        default: break;
    }
#pragma omp parallel num_threads(threads)
    {
        float row[BF16_MAX_CHANNELS];
#pragma omp for schedule(static)
        for (int64_t p = 0; p < rows; ++p)
            bf16_row(x + p * channels, y + p * channels, channels, weight, bias, eps, centre,
                     row);
    }
    return 0;
}
