"""Release checklists as jobs."""
