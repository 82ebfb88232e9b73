"""Clients of a running server: the ``voxwire mic`` terminal client and the browser
page (web/). Demos import services, the engine and models, never a transport."""
