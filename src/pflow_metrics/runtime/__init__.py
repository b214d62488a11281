"""Run JSON workflows (IR 0.1.0): validation, templates, namespacing, node types, the planner.

Nothing here is imported by the report commands; pocketflow and llm load only when a workflow runs.
"""
