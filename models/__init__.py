"""Model backends behind small interfaces, a registry, and the embedded defaults.

Nothing here imports the engine; heavy libraries are imported lazily by the
backend that needs them.
"""
