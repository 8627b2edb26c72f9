"""Contamination probes, one module each. Each is a `contam.probe.Probe` subclass registered by name.

Modules are imported on demand through `contam.registry`, not here, so importing one probe
never drags in the others.
"""
