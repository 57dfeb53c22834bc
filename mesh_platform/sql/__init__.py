"""SQL text the platform writes: identifiers and literals quoted, a descriptor column type named in
DuckDB or PostgreSQL.

Owns: `syntax` (`quote`, `literal`, `SQL_TYPES`, `sql_type`), the one place SQL text is escaped.
May import only: nothing of the platform (it is the bottom of the import graph: storage, ingestion,
checks, governance and the PostgreSQL warehouse all use it).
"""
