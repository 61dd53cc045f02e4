/* Template parameters for int64_t output indices: OUT, OSFX, OUT_SORT (undone by sc_out_end.h). */
#define OUT int64_t
#define OSFX i64
#define OUT_SORT sc_sort_i64
