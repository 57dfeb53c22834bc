"""What users browse: the product catalog (owner, value, columns, consumers, status, freshness) and
quarantined records read back, masked (`mesh products`, `mesh quarantine`).

Must not import: `cli`, `contracts`, `scaffold`, `orchestration`, `devtools`; it reads what runs
wrote, it does not run or scaffold anything.
"""
