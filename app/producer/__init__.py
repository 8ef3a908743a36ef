"""Producer side: starts tasks, reports their progress, cancels them (HTTP API and CLI)."""
