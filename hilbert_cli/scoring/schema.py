"""Moved to hilbert_cli.contracts.scores (docs/CONTRACTS.md, "Scores table")."""

from ..contracts.scores import (BASE_FIELDS, EMBEDDING_KEYS, TAIL_FIELDS, prob_column,  # noqa: F401
                                prob_columns, rows_to_table, scores_schema)
