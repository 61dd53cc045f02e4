/* SpMM template parameters for double values (undone by spmm_type_end.h):
 * the value type, its suffix and the vector operations of sc_simd.h. */
#define T double
#define SFX f64
#define VEC sc_vf64
#define VL SC_VL_F64
#define VLOAD sc_load_f64
#define VSTORE sc_store_f64
#define VZERO sc_zero_f64
#define VFMA sc_fma_f64
#define VFMAV sc_fmav_f64
#define VADD sc_add_f64
#define VHSUM sc_hsum_f64
