/* Undo sc_out_i32.h / sc_out_i64.h. */
#undef OUT
#undef OSFX
#undef OUT_SORT
