"""The headless REST API: the messenger's commands and events over HTTP, for QA automation,
bots and scenario runs (`chinwag serve`).

One concept per module: `auth` (the token), `protocol` (requests, responses, errors as JSON),
`routing` (path patterns to handlers), `handlers` (the messenger's commands as routes), `sse`
(server-sent event framing), `app` (the ASGI application), `openapi` (the document),
`limits` (what one client may hold, and for how long), `connection` (one HTTP/1.1 connection,
framed by h11) and `server` (binding, admitting connections, supervision).
"""
