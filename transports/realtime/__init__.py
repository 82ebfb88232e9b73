"""The OpenAI Realtime API: the protocol's events, one session's connection over a
WebSocket (or any event peer), spoken replies and live classification."""
