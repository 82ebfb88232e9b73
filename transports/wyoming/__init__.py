"""Home Assistant's Wyoming protocol over TCP, a unix socket or stdio: asr, tts and wake
on the same runtime (model workers, scheduler, session limit) as the HTTP server."""
