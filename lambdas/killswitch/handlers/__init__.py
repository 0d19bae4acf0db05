"""Lambda handlers: thin adapters (validate event → env → service layer → log summary)."""
