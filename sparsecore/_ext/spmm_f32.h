/* SpMM template parameters for float values (undone by spmm_type_end.h):
 * the value type, its suffix and the vector operations of sc_simd.h. */
#define T float
#define SFX f32
#define VEC sc_vf32
#define VL SC_VL_F32
#define VLOAD sc_load_f32
#define VSTORE sc_store_f32
#define VZERO sc_zero_f32
#define VFMA sc_fma_f32
#define VFMAV sc_fmav_f32
#define VADD sc_add_f32
#define VHSUM sc_hsum_f32
#if SC_HAVE_VECTOR_EXT
/* 4-lane vectors, for blocks of four values narrower than VEC */
#define V4 sc_vf32x4
#define V4LOAD sc_load_f32x4
#endif
#ifdef SC_HAVE_QUAD_SPLAT
/* the N:M tiles' weights four at a time from a register */
#define VQUAD sc_quad_f32
#define VSPLATQ sc_splat_quad_f32
#endif
