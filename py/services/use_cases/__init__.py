"""Long-running flows (bulk refresh, downloads, auto-organize) built on the services."""
