"""Matrix products split among Numba's threads, BLAS called in each (its own threads held to one)."""
import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True)
def gemm_rows(a, b, out, parts):
    """out = a @ b in ``parts`` runs of rows of a as equal as the rows allow, one task each, BLAS
    called in the task's thread (a run of rows of a C-ordered matrix is contiguous: Numba's
    np.dot copies any other layout)."""
    rows = a.shape[0]
    for i in prange(parts):
        first, last = i * rows // parts, (i + 1) * rows // parts
        np.dot(a[first:last], b, out[first:last])

