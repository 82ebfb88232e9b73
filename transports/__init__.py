"""The edges: each sub-package translates one protocol's bytes into engine and service
calls and their events back into bytes (realtime, webrtc, http, cli, bench).

Transports import the packages below them (services, engine, models, demos); nothing
below imports a transport. See docs/architecture.md.
"""
