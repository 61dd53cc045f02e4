/* Instantiate one (semiring, value type): the unmasked numeric and one-pass
 * passes for every index pair (unless SR_MASKED_ONLY), and the masked pass
 * passes (saxpy and dot) for both index types. Define VAL, VSFX, V_MUL, V_ADD, V_IS_ZERO (and
 * V_KEEP_ZEROS) first. */
#ifndef SR_MASKED_ONLY
#include "spgemm_num_all_idx.h"
#endif
#define IDX int32_t
#define ISFX i32
#define IDX_SORT sc_sort_i32
#include "spgemm_mask_impl.h"
#include "spgemm_dot_impl.h"
#undef IDX
#undef ISFX
#undef IDX_SORT
#define IDX int64_t
#define ISFX i64
#define IDX_SORT sc_sort_i64
#include "spgemm_mask_impl.h"
#include "spgemm_dot_impl.h"
#undef IDX
#undef ISFX
#undef IDX_SORT
