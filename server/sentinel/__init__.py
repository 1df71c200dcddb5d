"""A Redis Sentinel-compatible discovery endpoint, so stock Redis clients find each add-on's primary.

`resp.py` encodes replies (RESP2 and RESP3), `view.py` is the fleet as Sentinel reports it (pure),
`commands.py` answers one command for one connection (pure), `feed.py` follows the stored event stream
(the add-ons' roles and `+switch-master`), and `server.py` is the asyncio listener that parses requests
with hiredis' `Reader`.
"""
