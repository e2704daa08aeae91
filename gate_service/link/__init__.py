"""联网: a site (one enterprise's or one checkpoint's cleangate) and the platform (the bureau's cleangate).

The site connects out; its ledger is the outbox. ``uplink`` sends each gate's rows after the platform's
acknowledged head, signed (``keys``); ``platform_routes`` + ``store`` verify and keep them; ``downlink`` brings
the blacklist, alerts, plan files and vehicles down. ``adapter`` is the one seam a province's wire format plugs
into. The protocol is written up in docs/PROTOCOL.md.
"""
