"""``voxwire bench``: load and latency benchmarks against a running server or the
models themselves."""
