"""Reads a Parquet file with pyarrow (and counts it with DuckDB) and prints, as JSON lines:
first {"schema": {column: arrow type}, "duckdb_rows": n}, then one object per row with nulls
dropped, so rows compare directly with chorus's JSONL (which omits absent fields)."""
import json
import sys

import duckdb
import pyarrow.parquet as pq

path = sys.argv[1]
table = pq.read_table(path)
schema = {f.name: str(f.type) for f in table.schema}
nullable = {f.name: f.nullable for f in table.schema}
duck = duckdb.sql(f"select count(*) from read_parquet('{path}')").fetchone()[0]
print(json.dumps({"schema": schema, "nullable": nullable, "duckdb_rows": duck, "row_groups": pq.ParquetFile(path).metadata.num_row_groups}))
for row in table.to_pylist():
    print(json.dumps({k: v for k, v in row.items() if v is not None}, ensure_ascii=False))
