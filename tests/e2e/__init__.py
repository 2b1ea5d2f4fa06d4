"""End-to-end acceptance tests: real clients (Claude Code) against a real gateway and emulated upstreams."""
