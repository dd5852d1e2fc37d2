"""The local web console at ``/console`` on the api door (see docs/console.md).

``views`` (pure: documents and form parsing), ``live`` (pure: the live feed), ``access`` (pure:
token and origin rules) and ``endpoint`` (the shell: HTTP and server-sent events). The pages are
static files in ``static/`` shipped as package data: no CDN, no build step.
"""
