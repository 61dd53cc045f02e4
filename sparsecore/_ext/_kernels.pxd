# Declarations of the C kernels (no code). Type codes mirror sc_common.h.
from libc.stdint cimport int64_t

cdef extern from "sc_common.h" nogil:
    int SC_OK
    int SC_ERR_NOMEM
    int SC_ERR_OVERFLOW
    int SC_ERR_VALUE
    int SC_ERR_INTERRUPTED
    void *sc_alloc_room(size_t nbytes)
    int sc_cpu_has_avx2_fma()
    int sc_build_has_target_clones()

cdef extern from "spgemm.h" nogil:
    int sc_csr_check(int itype, int64_t m, int64_t n, int64_t nnz,
                     const void *Ap, const void *Aj, int n_threads, int64_t *where, int *sorted)
    int64_t sc_spgemm_flops(int itype, int64_t m, const void *Ap, const void *Aj,
                            const void *Bp, int n_threads, int64_t *fp,
                            int64_t *nnz_lower_bound)
    void sc_partition(int64_t m, const int64_t *fp, int64_t row_cost, int ntasks,
                      int64_t *bounds)
    int sc_spgemm_symbolic(int itype, int64_t m, int64_t n,
                           const void *Ap, const void *Aj,
                           const void *Bp, const void *Bj, int b_no_dup, int prefetch,
                           int ntasks, const int64_t *bounds, int n_threads,
                           int64_t *Cs)
    int sc_spgemm_numeric(int itype, int otype, int vtype, int64_t m, int64_t n,
                          const void *Ap, const void *Aj, const void *Ax,
                          const void *Bp, const void *Bj, const void *Bx,
                          int b_sorted, int prefetch, const int64_t *Cs,
                          int ntasks, const int64_t *bounds, int n_threads,
                          void *Cp, void *Cj, void *Cx, int64_t *nnz_out)
    int sc_spgemm_onepass(int itype, int otype, int vtype, int64_t m, int64_t n,
                          const void *Ap, const void *Aj, const void *Ax,
                          const void *Bp, const void *Bj, const void *Bx,
                          int b_sorted, int prefetch, const int64_t *fp,
                          int ntasks, const int64_t *bounds, int n_threads,
                          void *Cp, void *Cj, void *Cx, int64_t *nnz_out)
    int sc_spgemm_count_ranges(int itype, int64_t n, const void *Ap, const void *Aj,
                               const void *Bp, const void *Bj, int b_sorted,
                               int nranges, const int64_t *ranges, int64_t *counts)

cdef extern from "spgemm_semiring.h" nogil:
    ctypedef struct sc_semiring_info:
        const char *name
        int code
    const sc_semiring_info sc_semiring_table[]
    const int sc_semiring_count
    ctypedef double (*sc_binop_f64)(double, double)
    void sc_spgemm_set_user_ops(sc_binop_f64 add, sc_binop_f64 mul)
    int sc_spgemm_semiring_numeric(int semiring, int itype, int otype, int vtype,
                                   int64_t m, int64_t n,
                                   const void *Ap, const void *Aj, const void *Ax,
                                   const void *Bp, const void *Bj, const void *Bx,
                                   int b_sorted, int prefetch, const int64_t *Cs,
                                   int ntasks, const int64_t *bounds, int n_threads,
                                   void *Cp, void *Cj, void *Cx, int64_t *nnz_out)
    int sc_spgemm_semiring_onepass(int semiring, int itype, int otype, int vtype,
                                   int64_t m, int64_t n,
                                   const void *Ap, const void *Aj, const void *Ax,
                                   const void *Bp, const void *Bj, const void *Bx,
                                   int b_sorted, int prefetch, const int64_t *fp,
                                   int ntasks, const int64_t *bounds, int n_threads,
                                   void *Cp, void *Cj, void *Cx, int64_t *nnz_out)
    int sc_spgemm_masked(int semiring, int itype, int vtype, int64_t m, int64_t n,
                         const void *Ap, const void *Aj, const void *Ax,
                         const void *Bp, const void *Bj, const void *Bx,
                         const void *Mp, const void *Mj, int complement,
                         const int64_t *room, int ntasks, const int64_t *bounds,
                         int n_threads, void *Cp, void *Cj, void *Cx, int64_t *nnz_out)
    int64_t sc_spgemm_dot_cost(int itype, int64_t m, int64_t k, int64_t n,
                               const void *Ap, const void *Bp, const void *Bj,
                               const void *Mp, const void *Mj,
                               int64_t *colptr, int64_t *cost)
    int sc_spgemm_masked_dot(int semiring, int itype, int vtype,
                             int64_t m, int64_t k, int64_t n,
                             const void *Ap, const void *Aj, const void *Ax,
                             const void *Bp, const void *Bj, const void *Bx,
                             const int64_t *colptr, const void *Mp, const void *Mj,
                             const int64_t *room, int ntasks, const int64_t *bounds,
                             int n_threads, void *Cp, void *Cj, void *Cx, int64_t *nnz_out)
cdef extern from "topk.h" nogil:
    int sc_topk_product(int itype, int vtype, int64_t m, int64_t d, int64_t n, int64_t k,
                        int blocked, const void *Ap, const void *Aj, const void *Ax,
                        const void *Bp, const void *Bj, const void *Bx,
                        const void *Ep, const void *Ej,
                        int n_threads, int64_t *out_idx, void *out_val)
    int64_t sc_topk_product_flops(int itype, int64_t m, const void *Ap, const void *Aj,
                                  const void *Bp)
