"""The console: the pages the people at the windows use, served by every node from its own store.

Why here. The console is the node's edge for people, as ``node.rpc`` is its edge for programs:
it sits on the same floor, over the same desk (``node.app.desk``) and accounts
(``node.app.accounts``), and never imports the generated protobuf code. A node keeps serving
its pages while its link up is down, since every page reads the node's own store.

How it is served. ``pages.Console`` gives Starlette routes; the composition root
(``node.process.build``) serves them with ``node.process.http.build_app`` (the same edge
rules as the monitoring port: time limit, bounded heads and bodies, no tracebacks) on the
address ``[console] listen`` names, over HTTPS with the node's own certificate (plain HTTP
only with ``console.plaintext = true``, or on a node whose TLS is off).

The rules every page keeps:

- *Reads never block the event loop*: each store read runs in the console's own worker
  threads (``Console._read``), as the monitoring endpoints do; writes go through the desk
  (``CaseDesk.submit`` / ``act``), exactly as a gRPC call would.
- *Sessions*: signing in calls ``Accounts.login``; the random token it returns is the session
  cookie (HttpOnly, SameSite=Strict, Secure over HTTPS), kept server-side only as its hash.
  Every form POST carries a CSRF field derived from the session token (``sessions``).
- *Roles*: a page or an action is offered only when ``people.authorize`` allows it; a page the
  person's roles do not allow answers 403 with a page in the person's language.
- *People read Chinese and Beijing time* (``text``): dates as 2026年12月3日; English on request.
- *Small pages*: server-rendered (Jinja2, autoescaped), one stylesheet, no script but the
  receipt's print button; every page under 200 KB.
"""
