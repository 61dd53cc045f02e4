/* Undo sc_index_i32.h / sc_index_i64.h. */
#undef IDX
#undef ISFX
#undef IDX_SORT
