"""The read-only web status page (`kvmaint-scheduler --http-listen`): fleet calendar, running
maintenances live, add-on pages, agents. `calendar.py` decides what each day shows (pure), `pages.py`
renders HTML (escaping every value), `site.py` serves it with aiohttp behind the bearer tokens."""
