/* Instantiate the numeric pass for the current VAL over the four
 * (input index, output index) pairs. */
#define IDX int32_t
#define ISFX i32
#define OUT int32_t
#define OSFX i32
#define OUT_SORT sc_sort_i32
#include "spgemm_num_impl.h"
#undef OUT
#undef OSFX
#undef OUT_SORT
#define OUT int64_t
#define OSFX i64
#define OUT_SORT sc_sort_i64
#include "spgemm_num_impl.h"
#undef OUT
#undef OSFX
#undef OUT_SORT
#undef IDX
#undef ISFX

#define IDX int64_t
#define ISFX i64
#define OUT int32_t
#define OSFX i32
#define OUT_SORT sc_sort_i32
#include "spgemm_num_impl.h"
#undef OUT
#undef OSFX
#undef OUT_SORT
#define OUT int64_t
#define OSFX i64
#define OUT_SORT sc_sort_i64
#include "spgemm_num_impl.h"
#undef OUT
#undef OSFX
#undef OUT_SORT
#undef IDX
#undef ISFX
