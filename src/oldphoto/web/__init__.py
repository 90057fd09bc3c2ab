"""``oldphoto serve``: a web page for restoring photos in a browser, on this machine, offline.

Needs the optional packages of ``pip install 'oldphoto[web]'`` (Starlette and uvicorn); only
:mod:`oldphoto.web.cli` may be imported without them (it says how to get them).  The modules:
``engine`` (sessions, queue, worker; no web framework), ``previews`` (pictures for the page),
``app`` (HTTP), ``server`` (listening), ``static/`` (the page itself).
"""
