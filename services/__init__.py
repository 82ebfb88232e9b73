"""Domain services with no web framework in them: the model runtime and its workers,
inference calls, classification, speakers, workflows, replies, speech and voices, media
decoding and encoding, URL fetching.

Services import the engine and models, never a transport or a demo.
"""
