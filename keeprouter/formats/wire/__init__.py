"""Shapes shared by both sides of one wire format: what a client sends us and what an upstream of
the same format answers use the same content blocks, tool-id rules, usage fields and error types.
Client translators (`keeprouter.clients`) and upstream translators (`keeprouter.providers`) import
them from here; neither imports the other."""
