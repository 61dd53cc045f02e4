/*
 * sc_simd.h -- fixed-width vectors of 32 bytes (8 floats or 4 doubles) for
 * the SpMM micro-kernels, written once and compiled for every SIMD clone.
 *
 * With GCC/clang these are the compiler's generic vector types: the portable
 * baseline clone lowers them to pairs of SSE2 registers, the x86-64-v3 clone
 * to one AVX2 register, and `acc + w * x` becomes one FMA where the file is
 * compiled with -ffp-contract=fast. Other compilers get a plain struct of
 * lanes with the same operations (correct, not fast).
 *
 * Every operation is lane-wise, and reductions use one fixed order, so a
 * result never depends on how the work was split between threads.
 */
#ifndef SPARSECORE_SC_SIMD_H
#define SPARSECORE_SC_SIMD_H

#include <string.h>
#include "sc_common.h"

#define SC_VBYTES 32
#define SC_VL_F32 8
#define SC_VL_F64 4

#if defined(__GNUC__) || defined(__clang__)
#define SC_HAVE_VECTOR_EXT 1
/* 32-byte vectors only ever pass between always-inline functions, so the
 * ABI note about passing them without AVX does not apply */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
typedef float sc_vf32 __attribute__((vector_size(SC_VBYTES)));
typedef double sc_vf64 __attribute__((vector_size(SC_VBYTES)));
/* unaligned, aliasing-safe views for loads and stores */
typedef float sc_vf32_u __attribute__((vector_size(SC_VBYTES), aligned(4), __may_alias__));
typedef double sc_vf64_u __attribute__((vector_size(SC_VBYTES), aligned(8), __may_alias__));

SC_INLINE sc_vf32 sc_load_f32(const float *p) { return *(const sc_vf32_u *)p; }
SC_INLINE void sc_store_f32(float *p, sc_vf32 v) { *(sc_vf32_u *)p = v; }
SC_INLINE sc_vf32 sc_zero_f32(void) { sc_vf32 z = {0}; return z; }
SC_INLINE sc_vf32 sc_fma_f32(sc_vf32 acc, float w, sc_vf32 x) { return acc + w * x; }
SC_INLINE sc_vf32 sc_fmav_f32(sc_vf32 acc, sc_vf32 a, sc_vf32 b) { return acc + a * b; }
SC_INLINE sc_vf32 sc_add_f32(sc_vf32 a, sc_vf32 b) { return a + b; }

SC_INLINE sc_vf64 sc_load_f64(const double *p) { return *(const sc_vf64_u *)p; }
SC_INLINE void sc_store_f64(double *p, sc_vf64 v) { *(sc_vf64_u *)p = v; }
SC_INLINE sc_vf64 sc_zero_f64(void) { sc_vf64 z = {0}; return z; }
SC_INLINE sc_vf64 sc_fma_f64(sc_vf64 acc, double w, sc_vf64 x) { return acc + w * x; }
SC_INLINE sc_vf64 sc_fmav_f64(sc_vf64 acc, sc_vf64 a, sc_vf64 b) { return acc + a * b; }
SC_INLINE sc_vf64 sc_add_f64(sc_vf64 a, sc_vf64 b) { return a + b; }

#define SC_LANE(v, i) ((v)[i])

/* 16-byte vectors of 4 floats, for blocks of four values */
typedef float sc_vf32x4 __attribute__((vector_size(16)));
typedef float sc_vf32x4_u __attribute__((vector_size(16), aligned(4), __may_alias__));
SC_INLINE sc_vf32x4 sc_load_f32x4(const float *p) { return *(const sc_vf32x4_u *)p; }

#if defined(__clang__) || __GNUC__ >= 12
/* Four weights p[0..3] in both 16-byte halves of a vector, and weight q of
 * them in every lane: an in-lane permute of a register, where broadcasting
 * each weight from memory takes a load slot that the vector loads of x need
 * (2 rows x 4 vectors of N:M ran 10-15 % faster on Zen 3). q must be a
 * constant after unrolling. */
#define SC_HAVE_QUAD_SPLAT 1
SC_INLINE sc_vf32 sc_quad_f32(const float *p)
{
    const sc_vf32x4 q = sc_load_f32x4(p);
    return __builtin_shufflevector(q, q, 0, 1, 2, 3, 0, 1, 2, 3);
}
#define sc_splat_quad_f32(w, q)                                                \
    ((q) == 0   ? __builtin_shufflevector(w, w, 0, 0, 0, 0, 4, 4, 4, 4)         \
     : (q) == 1 ? __builtin_shufflevector(w, w, 1, 1, 1, 1, 5, 5, 5, 5)         \
     : (q) == 2 ? __builtin_shufflevector(w, w, 2, 2, 2, 2, 6, 6, 6, 6)         \
                : __builtin_shufflevector(w, w, 3, 3, 3, 3, 7, 7, 7, 7))
#endif

#else  /* portable structs */
#define SC_HAVE_VECTOR_EXT 0
typedef struct { float l[SC_VL_F32]; } sc_vf32;
typedef struct { double l[SC_VL_F64]; } sc_vf64;

SC_INLINE sc_vf32 sc_load_f32(const float *p) { sc_vf32 v; memcpy(v.l, p, sizeof v.l); return v; }
SC_INLINE void sc_store_f32(float *p, sc_vf32 v) { memcpy(p, v.l, sizeof v.l); }
SC_INLINE sc_vf32 sc_zero_f32(void) { sc_vf32 z; memset(&z, 0, sizeof z); return z; }
SC_INLINE sc_vf32 sc_fma_f32(sc_vf32 acc, float w, sc_vf32 x)
{ for (int i = 0; i < SC_VL_F32; i++) acc.l[i] += w * x.l[i]; return acc; }
SC_INLINE sc_vf32 sc_fmav_f32(sc_vf32 acc, sc_vf32 a, sc_vf32 b)
{ for (int i = 0; i < SC_VL_F32; i++) acc.l[i] += a.l[i] * b.l[i]; return acc; }
SC_INLINE sc_vf32 sc_add_f32(sc_vf32 a, sc_vf32 b)
{ for (int i = 0; i < SC_VL_F32; i++) a.l[i] += b.l[i]; return a; }

SC_INLINE sc_vf64 sc_load_f64(const double *p) { sc_vf64 v; memcpy(v.l, p, sizeof v.l); return v; }
SC_INLINE void sc_store_f64(double *p, sc_vf64 v) { memcpy(p, v.l, sizeof v.l); }
SC_INLINE sc_vf64 sc_zero_f64(void) { sc_vf64 z; memset(&z, 0, sizeof z); return z; }
SC_INLINE sc_vf64 sc_fma_f64(sc_vf64 acc, double w, sc_vf64 x)
{ for (int i = 0; i < SC_VL_F64; i++) acc.l[i] += w * x.l[i]; return acc; }
SC_INLINE sc_vf64 sc_fmav_f64(sc_vf64 acc, sc_vf64 a, sc_vf64 b)
{ for (int i = 0; i < SC_VL_F64; i++) acc.l[i] += a.l[i] * b.l[i]; return acc; }
SC_INLINE sc_vf64 sc_add_f64(sc_vf64 a, sc_vf64 b)
{ for (int i = 0; i < SC_VL_F64; i++) a.l[i] += b.l[i]; return a; }

#define SC_LANE(v, i) ((v).l[i])
#endif


#endif
