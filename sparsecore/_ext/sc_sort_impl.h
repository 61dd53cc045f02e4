/*
 * Template: in-place ascending sort of an integer key array.
 * Define SC_SORT_T (key type) and SC_SORT_NAME (function name) before
 * including. Insertion sort for short arrays, otherwise introsort
 * (median-of-three quicksort that falls back to heapsort past 2*log2(n)
 * levels, so the worst case stays O(n log n)).
 */

static inline void SC_NAME2(SC_SORT_NAME, insertion)(SC_SORT_T *a, int64_t n)
{
    for (int64_t i = 1; i < n; i++) {
        SC_SORT_T key = a[i];
        int64_t j = i - 1;
        while (j >= 0 && a[j] > key) {
            a[j + 1] = a[j];
            j--;
        }
        a[j + 1] = key;
    }
}

static void SC_NAME2(SC_SORT_NAME, sift)(SC_SORT_T *a, int64_t root, int64_t n)
{
    SC_SORT_T v = a[root];
    for (;;) {
        int64_t child = 2 * root + 1;
        if (child >= n) break;
        if (child + 1 < n && a[child + 1] > a[child]) child++;
        if (a[child] <= v) break;
        a[root] = a[child];
        root = child;
    }
    a[root] = v;
}

static void SC_NAME2(SC_SORT_NAME, heapsort)(SC_SORT_T *a, int64_t n)
{
    for (int64_t i = n / 2 - 1; i >= 0; i--) SC_NAME2(SC_SORT_NAME, sift)(a, i, n);
    for (int64_t end = n - 1; end > 0; end--) {
        SC_SORT_T t = a[0]; a[0] = a[end]; a[end] = t;
        SC_NAME2(SC_SORT_NAME, sift)(a, 0, end);
    }
}

static void SC_NAME2(SC_SORT_NAME, intro)(SC_SORT_T *a, int64_t n, int depth)
{
    while (n > 24) {
        if (depth-- == 0) {
            SC_NAME2(SC_SORT_NAME, heapsort)(a, n);
            return;
        }
        /* median of three to a[0], pivot a[0] */
        int64_t mid = n / 2;
        SC_SORT_T x = a[0], y = a[mid], z = a[n - 1], t;
        if (x > y) { t = x; x = y; y = t; }
        if (y > z) { t = y; y = z; z = t; }
        if (x > y) { t = x; x = y; y = t; }
        a[0] = x; a[mid] = y; a[n - 1] = z;
        SC_SORT_T pivot = y;
        int64_t i = 0, j = n - 1;
        for (;;) {
            do { i++; } while (a[i] < pivot);
            do { j--; } while (a[j] > pivot);
            if (i >= j) break;
            t = a[i]; a[i] = a[j]; a[j] = t;
        }
        /* a[0..j] <= pivot <= a[j+1..n-1]; recurse on the smaller side */
        int64_t left = j + 1, right = n - j - 1;
        if (left < right) {
            SC_NAME2(SC_SORT_NAME, intro)(a, left, depth);
            a += left; n = right;
        } else {
            SC_NAME2(SC_SORT_NAME, intro)(a + left, right, depth);
            n = left;
        }
    }
    SC_NAME2(SC_SORT_NAME, insertion)(a, n);
}

/* Distinct keys only: each key's final place is the number of smaller keys.
 * O(n^2) compares, but branch-free and vectorised (the key copy is padded
 * with the largest value to a multiple of 8, so the inner loop has no scalar
 * tail), which beats comparison sorts on short rows whose order the CPU
 * cannot predict. */
static inline void SC_NAME2(SC_SORT_NAME, rank)(SC_SORT_T *a, int64_t n)
{
    SC_SORT_T keys[SC_RANK_SORT_MAX], out[SC_RANK_SORT_MAX];
    const int npad = (int)((n + 7) & ~(int64_t)7);
    for (int q = 0; q < (int)n; q++) keys[q] = a[q];
    for (int q = (int)n; q < npad; q++) keys[q] = SC_SORT_MAXVAL;
    for (int q = 0; q < (int)n; q++) {
        const SC_SORT_T key = keys[q];
        int rank = 0;
        for (int r = 0; r < npad; r++) rank += (keys[r] < key);
        out[rank] = key;
    }
    for (int q = 0; q < (int)n; q++) a[q] = out[q];
}

/* Sort distinct keys (the columns of one output row). */
static inline void SC_SORT_NAME(SC_SORT_T *a, int64_t n)
{
    if (n <= SC_RANK_SORT_MAX) {
        SC_NAME2(SC_SORT_NAME, rank)(a, n);
        return;
    }
    int depth = 0;
    for (int64_t k = n; k > 1; k >>= 1) depth += 2;
    SC_NAME2(SC_SORT_NAME, intro)(a, n, depth);
}

#undef SC_SORT_T
#undef SC_SORT_NAME
#undef SC_SORT_MAXVAL
