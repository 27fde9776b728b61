"""The web console: Crossroads in a browser, at ``/ui`` on the gateway.

Layer: above :mod:`crossroads.gateway` and :mod:`crossroads.report`, below the CLI. The
gateway does not import the console; :func:`create_app` builds the gateway app and
:func:`mount` adds the console to it (``crossroads serve``, ``crossroads ui``).

How to add a page (the contract other modules rely on)
-------------------------------------------------------
1. Write ``crossroads/console/pages/NAME.py`` exposing ``NAV`` (a
   :class:`~.web.NavEntry`, or None) and ``routes(router: APIRouter) -> None``, and add the
   module to ``pages.PAGES`` (its order is the menu's).
2. Routes are relative to ``/ui`` and declare who may call them with one of the
   :mod:`.web` dependencies: ``CurrentSession`` (any login), ``AdminSession`` (master key
   only), ``CsrfSession`` / ``CsrfAdminSession`` (state-changing requests: the CSRF token
   is checked first, 403 and nothing runs without it). Each returns the
   :class:`~.sessions.Session` (``admin``, ``name``, ``key_id``): a virtual-key session
   sees only its own key's data (filter by ``session.key_id``).
3. Answer with ``render(request, "NAME.html", {...})``; templates extend ``base.html`` and
   fill the blocks ``title``, ``content`` and ``scripts`` (``head`` too, if needed).
   Autoescaping is on: never mark data ``|safe``. Link with ``url('/path')``.
4. Scripts are files under ``static/`` loaded with
   ``<script src="{{ url('/static/NAME.js') }}" defer></script>`` in the ``scripts``
   block: the Content-Security-Policy forbids inline scripts, inline styles and remote
   origins. In JS, put data in the page with ``textContent`` (``Crossroads.el``), never
   ``innerHTML``; POST with ``Crossroads.post(url, body)`` (it sends ``x-csrf-token``);
   htmx requests carry the token already. Forms carry
   ``<input type="hidden" name="csrf_token" value="{{ csrf_token }}">``.
5. The running gateway (keys, ledger, router, config) is ``web.gateway(request)``; the
   console's state is ``web.state(request)`` (``.cache`` holds what a page computes once
   per process, keyed ``"page.thing"``). Blocking store calls go through
   ``asyncio.to_thread``. Read a urlencoded form with ``await web.form(request)``; raise
   ``web.ConsoleError(status, message)`` for an error page (JSON under ``/ui/api/``).
6. Every control has an accessible name (a ``<label>`` or ``aria-label``).
7. Tests: ``tests/console/conftest.py`` has the running console (``console_server``,
   ``make_console``), Chromium pages (``ui_page``, ``admin_page``, ``login``) and logged-in
   HTTP clients (``console_client``).
"""

from __future__ import annotations

from .app import app_from_env, create_app, mount

__all__ = ["app_from_env", "create_app", "mount"]
