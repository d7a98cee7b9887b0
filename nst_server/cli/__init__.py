"""The command-line tools: `nst-stylize` (the engine, or a server, from a terminal) and
`nst-server` (start, stop and ask a background server)."""
