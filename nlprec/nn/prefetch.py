"""A software prefetch for numba kernels: ask the cache for a matrix row before it is needed.

The embedding kernels read rows of (V, d) tables at random (context words, negatives, Huffman
nodes); a row that misses the cache costs a few hundred cycles, more than the arithmetic on it.
Hinting those rows one step ahead lets the loads overlap the work on the current word
(BENCHMARKS.md, word embeddings, 2026-12-05). A prefetch never faults and changes no result.
"""

from __future__ import annotations

import numba
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

FLOATS_PER_LINE = 16  # 64-byte cache lines of float32


@intrinsic
def _prefetch(typingctx, matrix, row, column):
    """LLVM's prefetch (read, keep in all levels) of the line holding matrix[row, column]."""

    def codegen(context, builder, signature, args):
        matrix_type = signature.args[0]
        array = context.make_array(matrix_type)(context, builder, args[0])
        indices = [context.cast(builder, value, kind, types.intp) for value, kind in zip(args[1:], signature.args[1:])]
        pointer = cgutils.get_item_pointer(context, builder, matrix_type, array, indices, wraparound=False)
        i32 = ir.IntType(32)
        function_type = ir.FunctionType(ir.VoidType(), [pointer.type, i32, i32, i32])
        function = cgutils.get_or_insert_function(builder.module, function_type, "llvm.prefetch.p0")
        builder.call(function, [pointer, i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(matrix, row, column), codegen


@numba.njit(inline="always")
def prefetch_row(matrix, row):
    """Prefetch every cache line of matrix[row] (a C-contiguous float32 matrix)."""
    for column in range(0, matrix.shape[1], FLOATS_PER_LINE):
        _prefetch(matrix, row, column)
