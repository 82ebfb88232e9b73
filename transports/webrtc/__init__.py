"""Realtime sessions over WebRTC (aiortc): ``POST /v1/realtime/calls``, ICE and the
audio tracks; the session itself is the realtime package's connection."""
