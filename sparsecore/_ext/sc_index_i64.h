/* Template parameters for int64_t indices: IDX, ISFX, IDX_SORT (undone by sc_index_end.h). */
#define IDX int64_t
#define ISFX i64
#define IDX_SORT sc_sort_i64
