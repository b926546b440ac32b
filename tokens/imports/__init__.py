"""CSV/XLSX import of allocations: the file's rows (parse), what they would change (preview);
the write that turns them into pending edits is `tokens.services.imports`."""
