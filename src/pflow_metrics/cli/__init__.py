"""The `pflow-metrics` command: parses options and renders; the library decides."""
