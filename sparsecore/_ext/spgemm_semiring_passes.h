/* Instantiate one (semiring, value type): the unmasked numeric and one-pass
 * passes for every index pair (when SC_SR_UNMASKED), and the masked passes
 * (saxpy and dot) for both index types. Define VAL, VSFX, V_MUL, V_ADD,
 * V_IS_ZERO (and V_KEEP_ZEROS) first. */
#if SC_SR_UNMASKED
#include "spgemm_num_instances.h"
#endif
#include "sc_index_i32.h"
#include "spgemm_mask_impl.h"
#include "spgemm_dot_impl.h"
#include "sc_index_end.h"
#include "sc_index_i64.h"
#include "spgemm_mask_impl.h"
#include "spgemm_dot_impl.h"
#include "sc_index_end.h"
