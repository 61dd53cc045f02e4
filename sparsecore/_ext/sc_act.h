/*
 * sc_act.h -- the activations the SpMM epilogue applies, one value at a time
 * (static inline: loops over them vectorise in the including file's target).
 *
 * float: branch-free approximations built from arithmetic only, so the
 * compiler vectorises them: exp by Cody-Waite reduction to |r| <= ln(2)/2
 * and a degree-7 Taylor polynomial, scaled by 2^n in the exponent bits;
 * erfc(z) = t exp(-z^2 + P(t)), t = 1 / (1 + z/2), the form of Numerical
 * Recipes' erfcc (Press et al., 2007, sec. 6.2.2) with P of degree 10 fitted
 * here (Chebyshev least squares over z in [0, 10]: relative error 2.4e-8 in
 * exact arithmetic; a few float ulps as evaluated). double: libm.
 */
#ifndef SPARSECORE_SC_ACT_H
#define SPARSECORE_SC_ACT_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "sc_common.h"

/* exp(y) for y in [-80, 87] (clamped there: the activations only need exp
 * of moderate arguments; the clamp keeps 2^n and the products the callers
 * form with the result normal floats, as subnormal operands cost a
 * microcode assist each on x86) */
SC_INLINE float sc_exp_f32(float y)
{
    y = y < -80.0f ? -80.0f : y;
    y = y > 87.0f ? 87.0f : y;
    /* n = round(y / ln 2): adding 1.5 * 2^23 rounds to an integer and leaves
     * n in the low mantissa bits, read back by a bit cast (a float-to-int
     * conversion after the clamps' selects would stop gcc vectorising: it
     * may trap) */
    const float big = y * 1.44269504088896341f + 12582912.0f;
    const float fn = big - 12582912.0f;
    int32_t n;
    memcpy(&n, &big, sizeof n);
    n -= 0x4B400000;
    /* ln 2 split so that fn * hi is exact */
    const float r = (y - fn * 0.693145751953125f) - fn * 1.428606765330187e-6f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const uint32_t bits = (uint32_t)(n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* erfc(z) for z >= 0 */
SC_INLINE float sc_erfc_pos_f32(float z)
{
    const float t = 1.0f / (1.0f + 0.5f * z);
    float p = -0.13218835868710319f;
    p = p * t + 0.9184747600501522f;
    p = p * t - 2.6601846294097253f;
    p = p * t + 4.065587112917952f;
    p = p * t - 3.4075148889673788f;
    p = p * t + 1.589504339615941f;
    p = p * t - 0.6848010857313465f;
    p = p * t + 0.2197518299238366f;
    p = p * t + 0.35531430370864603f;
    p = p * t + 1.0016273122005974f;
    p = p * t - 1.2655706713911126f;
    return t * sc_exp_f32(p - z * z);
}

/* x * Phi(x) = x (1 + erf(x / sqrt 2)) / 2 */
SC_INLINE float sc_gelu_f32(float x)
{
    /* beyond |x| = 20 the erfc term is below 1e-88: clamping x there keeps
     * h finite (0.5 * inf * 0 would be NaN) and NaN still propagates */
    float xc = x < -20.0f ? -20.0f : x;
    xc = xc > 20.0f ? 20.0f : xc;
    const float e = sc_erfc_pos_f32(fabsf(xc) * 0.70710678118654752f);
    const float h = 0.5f * xc * e;
    const float pos = x - h;  /* both arms computed: a select vectorises */
    return x >= 0.0f ? pos : h;
}

/* 1 / (1 + exp(-x)) from e = exp(-|x|) <= 1: 1 / (1 + e) for x >= 0, e / (1 + e)
 * below. The exponent never overflows, and no lane forms the tiny quotient of
 * a clamped exp(87): with x / (1 + exp(-x)) gcc computed it for every lane and
 * blended, and its subnormal products cost a microcode assist each (3 ns per
 * value for |x| < 1, 0.3 ns this way). */
SC_INLINE float sc_sigmoid_f32(float x)
{
    const float e = sc_exp_f32(-fabsf(x));
    const float num = x >= 0.0f ? 1.0f : e;  /* NaN takes e, which is NaN */
    return num / (1.0f + e);
}

/* x (1 + tanh(u)) / 2 = x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3) */
SC_INLINE float sc_gelu_tanh_f32(float x)
{
    const float u = 0.79788456080286536f * (x + 0.044715f * x * x * x);
    return x * sc_sigmoid_f32(2.0f * u);
}

SC_INLINE float sc_silu_f32(float x) { return x * sc_sigmoid_f32(x); }

SC_INLINE double sc_gelu_f64(double x) { return 0.5 * x * erfc(-x * 0.70710678118654752); }

SC_INLINE double sc_gelu_tanh_f64(double x)
{
    return 0.5 * x * (1.0 + tanh(0.79788456080286536 * (x + 0.044715 * x * x * x)));
}

SC_INLINE double sc_silu_f64(double x) { return x / (1.0 + exp(-x)); }

#endif
