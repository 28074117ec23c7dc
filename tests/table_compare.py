"""Comparing ASR-derived tables written by different processes.

CTranslate2's CPU matrix products (Intel MKL on Intel CPUs, oneDNN on AMD) are not bitwise
reproducible from one process to the next: the result can move in the last float32 digits with
memory alignment (CTranslate2 issue #693; the maintainer's workaround, MKL_CBWR=COMPATIBLE, is
Intel-only and much slower). So a words table from a worker process may hold an avg_logprob of
-4.736545 where the parent wrote -4.736539. Such tables are compared exactly in everything that
is not a float score (rows, words, speakers, timings, ids) and to float32 noise in the scores.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

# relative tolerance: a few float32 ulps of drift, far below any change a bug would make
FLOAT_RTOL = 1e-4
FLOAT_ATOL = 1e-6


def assert_same_table(a: pa.Table, b: pa.Table, what: object = "",
                      *, float_columns: tuple[str, ...] = ("avg_logprob", "probability", "no_speech_prob")) -> None:
    """Same schema and rows; `float_columns` equal to FLOAT_RTOL, every other column exactly."""
    assert a.schema.remove_metadata().equals(b.schema.remove_metadata()), (what, a.schema, b.schema)
    assert a.num_rows == b.num_rows, (what, a.num_rows, b.num_rows)
    for name in a.column_names:
        ca, cb = a.column(name), b.column(name)
        if name in float_columns and pa.types.is_floating(ca.type):
            assert ca.null_count == cb.null_count, (what, name)
            xa = ca.to_numpy(zero_copy_only=False).astype(np.float64)
            xb = cb.to_numpy(zero_copy_only=False).astype(np.float64)
            assert np.allclose(xa, xb, rtol=FLOAT_RTOL, atol=FLOAT_ATOL, equal_nan=True), (what, name)
        else:
            assert ca.equals(cb), (what, name)
