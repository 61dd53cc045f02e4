/* Instantiate the numeric pass (spgemm_num_impl.h) for the current VAL over
 * the four (input index, output index) pairs. */
#include "sc_index_i32.h"
#include "sc_out_i32.h"
#include "spgemm_num_impl.h"
#include "sc_out_end.h"
#include "sc_out_i64.h"
#include "spgemm_num_impl.h"
#include "sc_out_end.h"
#include "sc_index_end.h"

#include "sc_index_i64.h"
#include "sc_out_i32.h"
#include "spgemm_num_impl.h"
#include "sc_out_end.h"
#include "sc_out_i64.h"
#include "spgemm_num_impl.h"
#include "sc_out_end.h"
#include "sc_index_end.h"
