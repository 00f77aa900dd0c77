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
 * Built by amsnet.native on first use (cc -O3 -march=native -fopenmp); the threads are
 * PyTorch's OpenMP runtime (the same libgomp.so.1, shared by soname) and the count is passed
 * in by the caller (torch.get_num_threads()).
 */
#include <math.h>
#include <stdint.h>

#define BLOCK 16

#define DEFINE_NORM(C)                                                                        \
    static void one_row_##C(const float *restrict x, float *restrict y,                       \
                            const float *restrict weight, const float *restrict bias,         \
                            float eps) {                                                      \
        float sum = 0.f;                                                                      \
        for (int c = 0; c < C; ++c) sum += x[c];                                              \
        const float mean = sum * (1.f / C);                                                   \
        float squares = 0.f;                                                                  \
        for (int c = 0; c < C; ++c) squares += (x[c] - mean) * (x[c] - mean);                \
        const float rstd = 1.f / sqrtf(squares * (1.f / C) + eps);                            \
        for (int c = 0; c < C; ++c) y[c] = (x[c] - mean) * rstd * weight[c] + bias[c];        \
    }                                                                                         \
    static void norm_##C(const float *restrict x, float *restrict y, int64_t rows,            \
                         const float *restrict weight, const float *restrict bias, float eps, \
                         int threads) {                                                       \
        const int64_t blocks = rows / BLOCK;                                                  \
        _Pragma("omp parallel for schedule(static) num_threads(threads)")                     \
        for (int64_t k = 0; k < blocks; ++k) {                                                \
            const float *restrict xb = x + k * BLOCK * C;                                     \
            float *restrict yb = y + k * BLOCK * C;                                           \
            float mean[BLOCK], rstd[BLOCK];                                                   \
            _Pragma("omp simd")                                                               \
            for (int p = 0; p < BLOCK; ++p) {                                                 \
                float sum = 0.f;                                                              \
                for (int c = 0; c < C; ++c) sum += xb[p * C + c];                             \
                mean[p] = sum * (1.f / C);                                                    \
            }                                                                                 \
            _Pragma("omp simd")                                                               \
            for (int p = 0; p < BLOCK; ++p) {                                                 \
                float squares = 0.f;                                                          \
                for (int c = 0; c < C; ++c) {                                                 \
                    const float d = xb[p * C + c] - mean[p];                                  \
                    squares += d * d;                                                         \
                }                                                                             \
                rstd[p] = 1.f / sqrtf(squares * (1.f / C) + eps);                             \
            }                                                                                 \
            for (int p = 0; p < BLOCK; ++p)                                                   \
                for (int c = 0; c < C; ++c)                                                   \
                    yb[p * C + c] = (xb[p * C + c] - mean[p]) * rstd[p] * weight[c] + bias[c]; \
        }                                                                                     \
        for (int64_t p = blocks * BLOCK; p < rows; ++p)                                       \
            one_row_##C(x + p * C, y + p * C, weight, bias, eps);                             \
    }

DEFINE_NORM(4)
DEFINE_NORM(8)
DEFINE_NORM(16)
DEFINE_NORM(32)

/* Returns 0 when done, 1 for a channel count without a kernel (the caller falls back). */
int amsnet_channel_norm(const float *x, float *y, int64_t rows, int64_t channels,
                        const float *weight, const float *bias, float eps, int threads) {
    if (threads < 1) threads = 1;
    switch (channels) {
        case 4: norm_4(x, y, rows, weight, bias, eps, threads); return 0;
        case 8: norm_8(x, y, rows, weight, bias, eps, threads); return 0;
        case 16: norm_16(x, y, rows, weight, bias, eps, threads); return 0;
        case 32: norm_32(x, y, rows, weight, bias, eps, threads); return 0;
        default: return 1;
    }
}

/* The channel counts with a kernel, for the Python side to check against. */
int amsnet_channel_norm_supports(int64_t channels) {
    return channels == 4 || channels == 8 || channels == 16 || channels == 32;
}
