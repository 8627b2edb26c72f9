"""Scans: submit, poll, list, cancel and fetch the report of a contamination scan job."""
