/*
 * sc_transpose.h -- 8 x 8 register transposes of float32 blocks, for the
 * SpMM files (x86-64 with GCC or clang; include after <immintrin.h>). The
 * function uses AVX only; callers check the CPU for AVX2 (sc_cpu_has_avx2_fma) unless
 * their whole file targets a level above it.
 */
#ifndef SPARSECORE_SC_TRANSPOSE_H
#define SPARSECORE_SC_TRANSPOSE_H

#include <stdint.h>

/* dst[c * ldd + r] = src[r * lds + c] for r < rows, c < cols (both
 * multiples of 8): 8 x 8 blocks of floats transposed in registers, so a
 * block leaves as eight 8-float stores instead of 64 scalar ones. */
__attribute__((target("avx2,fma")))
static void sc_transpose_f32(const float *src, int64_t lds, int64_t rows, int64_t cols,
                             float *dst, int64_t ldd)
{
    for (int64_t r0 = 0; r0 < rows; r0 += 8) {
        for (int64_t c0 = 0; c0 < cols; c0 += 8) {
            const float *s = src + r0 * lds + c0;
            __m256 r[8], t[8];
            for (int k = 0; k < 8; k++) r[k] = _mm256_loadu_ps(s + k * lds);
            for (int k = 0; k < 8; k += 2) {
                t[k] = _mm256_unpacklo_ps(r[k], r[k + 1]);
                t[k + 1] = _mm256_unpackhi_ps(r[k], r[k + 1]);
            }
            for (int k = 0; k < 8; k += 4) {
                r[k] = _mm256_shuffle_ps(t[k], t[k + 2], 0x44);
                r[k + 1] = _mm256_shuffle_ps(t[k], t[k + 2], 0xee);
                r[k + 2] = _mm256_shuffle_ps(t[k + 1], t[k + 3], 0x44);
                r[k + 3] = _mm256_shuffle_ps(t[k + 1], t[k + 3], 0xee);
            }
            /* r[k] (k < 4): column k of rows 0-3 in the low half, column
             * k + 4 in the high half; r[k + 4] the same for rows 4-7 */
            float *d = dst + c0 * ldd + r0;
            for (int k = 0; k < 4; k++) {
                _mm256_storeu_ps(d + k * ldd, _mm256_permute2f128_ps(r[k], r[k + 4], 0x20));
                _mm256_storeu_ps(d + (k + 4) * ldd, _mm256_permute2f128_ps(r[k], r[k + 4], 0x31));
            }
        }
    }
}

#endif
