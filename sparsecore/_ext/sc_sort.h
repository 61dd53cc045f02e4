/* In-place ascending sorts of int32 and int64 key arrays (introsort). */
#ifndef SPARSECORE_SC_SORT_H
#define SPARSECORE_SC_SORT_H
#include <stdint.h>

#define SC_SORT_T int32_t
#define SC_SORT_NAME sc_sort_i32
#include "sc_sort_impl.h"

#define SC_SORT_T int64_t
#define SC_SORT_NAME sc_sort_i64
#include "sc_sort_impl.h"

#endif
