"""Workflows: what community managers do with the community data (triage of the inbox, ...).

Unlike the ingest path, these modules write only their own tables (``inbox_states``); they never
change community data.
"""
