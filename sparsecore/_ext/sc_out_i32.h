/* Template parameters for int32_t output indices: OUT, OSFX, OUT_SORT (undone by sc_out_end.h). */
#define OUT int32_t
#define OSFX i32
#define OUT_SORT sc_sort_i32
