"""The traffic-police blacklist (三(六)29): trucks caught with OBD tampered, emission-control devices removed or
over-limit emissions may not enter the city area during the campaign.

A domain package: handed an asyncpg pool and mounted by gate_service, it never imports gate_service.

    app[blacklist.APP_KEY] = bl = blacklist.Blacklist(pool, principal_of=..., body_of=...)
    await bl.start()                      # loads the open entries, LISTENs for changes
    api.extend(blacklist.endpoints())     # the HTTP endpoints, declared as data
    bl.lookup("晋LA1234", at)             # -> Entry | None, in memory, for every frame
    await bl.expire_due(day)              # daily job
    await bl.stop()
"""

from blacklist.model import REASONS, STATUSES, BlacklistError, Entry, local_day
from blacklist.routes import endpoints
from blacklist.service import APP_KEY, CHANNEL, Blacklist
from blacklist.store import Listing

__all__ = [
    "APP_KEY",
    "CHANNEL",
    "REASONS",
    "STATUSES",
    "Blacklist",
    "BlacklistError",
    "Entry",
    "Listing",
    "endpoints",
    "local_day",
]
