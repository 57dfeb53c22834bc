"""Product contracts over time: snapshots, the changes between two, and the consumer-aware gate.

Must not import: `cli`, `catalog`, `orchestration`, `devtools`.
"""
