"""Reads of the analytics pages, one module per page family.

- `activity`: the audit trail, its integrity, one user's interaction history.
- `statistics`: usage by month and year, a period's usage, top users.
- `forecast`: when pools and members run out at the recent pace.
- `exports`: the queries behind the CSV and XLSX exports.

Import the module you need; this package re-exports nothing.
"""
