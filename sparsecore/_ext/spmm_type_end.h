/* Undo spmm_f32.h / spmm_f64.h (and the templates' FNV). */
#undef T
#undef SFX
#undef VEC
#undef VL
#undef VLOAD
#undef VSTORE
#undef VZERO
#undef VFMA
#undef VFMAV
#undef VADD
#undef VHSUM
#undef FNV
#undef NM_GEMV_PERM
#undef TRANSPOSE_BLOCKS
