"""The web console (issue 8): pages for the gate guard, the traffic police and the ecology bureau.

Plain HTML/CSS/JS served by the service itself (no build step, nothing fetched from the internet). The pages
hold no data: every API call carries the token the user pasted. ``setup(app)`` must run before
``Api.mount(app)``: it adds the console's few helper endpoints to the API and the pages as plain routes.
"""

from gate_service.console.routes import setup

__all__ = ["setup"]
