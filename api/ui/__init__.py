"""The web application: server-rendered pages under ``/ui`` for every user of the
partnership, on the same FastAPI app as the API.

A page is the API seen through a browser, never more: each page's guard is the same
permission table (``api.deps.page``), and what a page shows comes from calling the API's
own route functions (so through the same read side, policy and access records) and
rendering the model they return. ``api.ui.web.install`` mounts it all.
"""
