"""The voxwire engine: audio frames, ring buffer, VAD segmenter, streaming-ASR policy,
sessions and the scheduler that feeds model workers.

The cores here are sans-I/O: they take samples and return events, and never touch
sockets or import model libraries.
"""
