/* Template parameters for int32_t indices: IDX, ISFX, IDX_SORT (undone by sc_index_end.h). */
#define IDX int32_t
#define ISFX i32
#define IDX_SORT sc_sort_i32
