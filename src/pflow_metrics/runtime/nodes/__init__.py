"""The built-in node types, registered under the `pflow_metrics.node_types` entry-point group."""
