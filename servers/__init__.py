"""Servers: the REST service and the vLLM launch helper."""
