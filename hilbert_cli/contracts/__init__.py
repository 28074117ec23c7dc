"""The contracts between stages: each table's Arrow schema and its typed metadata.

Stages meet only through files (docs/CONTRACTS.md, the truth these modules implement): every
table's columns (`*_SCHEMA`, `*_schema()`) and the metadata model of its ``hilbert`` key
(`TableMeta` subclasses, with `from_metadata` / `to_metadata` / `read` / `write_table` and a
`format_version`) live here, one module per table or small group, built on parquet_io's one
atomic writer.
"""
