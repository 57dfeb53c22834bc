"""Products' contracts as Open Data Contract Standard (ODCS) 3.x documents: `odcs_export` writes a
product's contract, `odcs_import` reads one into a descriptor entry, `odcs_quality` maps Great
Expectations expectations to ODCS quality rules and back."""
