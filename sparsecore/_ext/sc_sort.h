/* In-place ascending sorts of arrays of distinct int32 or int64 keys. */
#ifndef SPARSECORE_SC_SORT_H
#define SPARSECORE_SC_SORT_H
#include <stdint.h>

/* Arrays up to this length are sorted by rank (keys must be distinct). */
#define SC_RANK_SORT_MAX 32

#define SC_SORT_T int32_t
#define SC_SORT_MAXVAL INT32_MAX
#define SC_SORT_NAME sc_sort_i32
#include "sc_sort_impl.h"

#define SC_SORT_T int64_t
#define SC_SORT_MAXVAL INT64_MAX
#define SC_SORT_NAME sc_sort_i64
#include "sc_sort_impl.h"

#endif
