"""The web cockpit: a FastAPI application rendering Jinja2 templates (autoescaped) over the store.

Handlers are thin: they check the user's permission and the CSRF token, call the query, metrics
and workflow modules, and render.  No SQL lives here.  The overview and the member list are served
from ready pages (:mod:`parvis.web.ready`) straight from the event loop when they are cached, so a
warm request takes no worker thread and no database read.
"""

# No "from __future__ import annotations": FastAPI resolves the Annotated dependencies defined in create_app.

import secrets
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from fastapi import Depends, FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, pass_context, select_autoescape
from jinja2.runtime import Context
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from parvis.store import Store
from parvis.web import auth, i18n, labels, metrics_view, moderation_view, queries, reports
from parvis.web.auth import User
from parvis.web.cache import pages, views
from parvis.web.labels import N_
from parvis.web.ready import ReadyPage
from parvis.workflows import inbox, moderation

SESSION_COOKIE = "parvis_session"
LOGIN_NONCE_COOKIE = "parvis_login"
STATIC_DIR = Path(__file__).parent / "static"
PER_PAGE = 50

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
# The overview holds aggregates only: a browser may keep it and revalidate it with its ETag.  Pages
# with member names or community text are never stored.
OVERVIEW_CACHE_CONTROL = "private, no-cache"
NO_STORE = "no-store"


class LoginRequired(Exception):
    pass


class Forbidden(Exception):
    pass


class BadCsrf(Exception):
    pass


class NotFound(Exception):
    pass


@pass_context
def _gettext(context: Context, message: str) -> str:
    return str(context["translations"].gettext(message))


@pass_context
def _ngettext(context: Context, singular: str, plural: str, count: int) -> str:
    return str(context["translations"].ngettext(singular, plural, count))


def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("parvis.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        # Templates ship with the package: no file system check on every render.
        auto_reload=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
    environment.filters["safe_url"] = safe_url
    # Chart specs carry thousands of data points: no blanks after separators.
    environment.policies["json.dumps_kwargs"] = {"sort_keys": True, "separators": (",", ":")}
    environment.globals["labels"] = labels
    return environment


def safe_url(value: object) -> str | None:
    """A link to an original post, only when it is http(s): community data may hold ``javascript:`` URLs."""
    if not isinstance(value, str):
        return None
    parts = urlsplit(value.strip())
    if parts.scheme.lower() in ("http", "https") and parts.netloc:
        return value.strip()
    return None


def safe_next(target: str | None) -> str:
    """A local path to go back to; anything else (another host, a scheme) becomes the home page."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


def _page_number(value: int) -> int:
    return max(1, value)


class PageHeaders:
    """ASGI middleware: the language of the request (``request.state.language``) and the headers of
    every response (security headers, Content-Language, no-store unless the page says otherwise)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        cookie = cookie_parser(headers.get("cookie", "")).get(i18n.COOKIE)
        language = i18n.choose_language(cookie, headers.get("accept-language"))
        scope.setdefault("state", {})["language"] = language
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    response_headers.setdefault(name, value)
                if not static:
                    response_headers.setdefault("Cache-Control", NO_STORE)
                response_headers.setdefault("Content-Language", language)
                response_headers.append("Vary", "Accept-Language, Cookie")
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(store: Store, *, secret: bytes | None = None, secure_cookies: bool = False) -> FastAPI:
    """The application over ``store``; ``secret`` signs CSRF tokens (default: :func:`auth.load_secret`)."""
    key = secret if secret is not None else auth.load_secret()
    app = FastAPI(title="Parvis", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store = store
    templates = _environment()
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(PageHeaders)

    # -- helpers --------------------------------------------------------------------------------------

    def language_of(request: Request) -> str:
        return getattr(request.state, "language", i18n.DEFAULT_LANGUAGE)

    def gettext(request: Request, message: str) -> str:
        return str(i18n.translations(language_of(request)).gettext(message))

    async def current_user(request: Request) -> User:
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            raise LoginRequired
        user = auth.recent_session_user(store, token) or await run_in_threadpool(auth.session_user, store, token)
        if user is None:
            raise LoginRequired
        request.state.user = user
        return user

    def requires(permission: str) -> Callable[[Request], Any]:
        async def dependency(request: Request) -> User:
            user = await current_user(request)
            if not user.can(permission):
                raise Forbidden
            return user

        return dependency

    viewer = Annotated[User, Depends(requires("view"))]
    triager = Annotated[User, Depends(requires("triage"))]
    moderator = Annotated[User, Depends(requires("moderate"))]
    administrator = Annotated[User, Depends(requires("admin"))]

    def check_csrf(request: Request, token: str | None) -> None:
        session = request.cookies.get(SESSION_COOKIE)
        sent = token or request.headers.get("x-csrf-token")
        if not auth.csrf_valid(key, session, sent):
            raise BadCsrf

    def url_with(request: Request, **changes: Any) -> str:
        params = dict(request.query_params)
        for name, value in changes.items():
            if value is None or value == "":
                params.pop(name, None)
            else:
                params[name] = str(value)
        query = urlencode(params)
        return request.url.path + ("?" + query if query else "")

    def render(request: Request, name: str, status_code: int = 200, **values: Any) -> HTMLResponse:
        return HTMLResponse(render_text(request, name, **values), status_code=status_code)

    def render_text(request: Request, name: str, **values: Any) -> str:
        return templates.get_template(name).render(page_context(request, values))

    async def ready_page(request: Request, user: User, cache_control: str, build: Callable[[], str]) -> Response:
        """The page for this request, session, language and store state: from the cache without
        leaving the event loop when it is there, else built in a worker thread and kept."""
        csrf = auth.csrf_token(key, request.cookies.get(SESSION_COOKIE, ""))
        page_key = (
            request.url.path,
            request.url.query,
            language_of(request),
            "hx-request" in request.headers,
            user,
            csrf,
        )
        page: ReadyPage | None = pages.peek(store, page_key)
        if page is None:
            page = await run_in_threadpool(pages.get, store, page_key, lambda: ReadyPage.of(build()))
        return page.response(request.headers, cache_control)

    def page_context(request: Request, values: dict[str, Any]) -> dict[str, Any]:
        language = language_of(request)
        user: User | None = getattr(request.state, "user", None)
        session = request.cookies.get(SESSION_COOKIE)
        return {
            "request": request,
            "user": user,
            "csrf": auth.csrf_token(key, session) if session and user else "",
            "language": language,
            "languages": i18n.LANGUAGES,
            "translations": i18n.translations(language),
            "fmt": i18n.Formatter(language),
            "url_with": lambda **changes: url_with(request, **changes),
            "here": request.url.path + ("?" + request.url.query if request.url.query else ""),
            **values,
        }

    # -- errors ---------------------------------------------------------------------------------------

    @app.exception_handler(LoginRequired)
    def login_required(request: Request, _problem: LoginRequired) -> Response:
        if request.method == "GET" and "hx-request" not in request.headers:
            target = request.url.path + ("?" + request.url.query if request.url.query else "")
            return RedirectResponse("/login?" + urlencode({"next": target}), status_code=303)
        return Response(gettext(request, N_("Please log in.")), status_code=401, media_type="text/plain")

    @app.exception_handler(Forbidden)
    def forbidden(request: Request, _problem: Forbidden) -> Response:
        return render(request, "error.html", 403, message=gettext(request, N_("Your role does not allow this.")))

    @app.exception_handler(BadCsrf)
    def bad_csrf(request: Request, _problem: BadCsrf) -> Response:
        message = gettext(request, N_("This form has expired. Go back, reload the page and try again."))
        return render(request, "error.html", 403, message=message)

    @app.exception_handler(NotFound)
    def not_found(request: Request, _problem: NotFound) -> Response:
        return render(request, "error.html", 404, message=gettext(request, N_("Nothing here.")))

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, problem: StarletteHTTPException) -> Response:
        if problem.status_code == 404:
            return render(request, "error.html", 404, message=gettext(request, N_("Nothing here.")))
        return Response(str(problem.detail), status_code=problem.status_code, media_type="text/plain")

    # -- login ----------------------------------------------------------------------------------------

    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, next: str = "/") -> Response:
        nonce = request.cookies.get(LOGIN_NONCE_COOKIE) or secrets.token_urlsafe(24)
        response = render(
            request, "login.html", next=safe_next(next), login_csrf=auth.csrf_token(key, nonce), failed=False
        )
        _set_cookie(response, LOGIN_NONCE_COOKIE, nonce, max_age=3600)
        return response

    @app.post("/login")
    def login(
        request: Request,
        username: Annotated[str, Form()] = "",
        password: Annotated[str, Form()] = "",
        csrf_token: Annotated[str, Form()] = "",
        next: Annotated[str, Form()] = "/",
    ) -> Response:
        nonce = request.cookies.get(LOGIN_NONCE_COOKIE)
        if not auth.csrf_valid(key, nonce, csrf_token):
            raise BadCsrf
        user = auth.authenticate(store, username, password)
        if user is None:
            assert nonce is not None
            return render(
                request,
                "login.html",
                401,
                next=safe_next(next),
                login_csrf=auth.csrf_token(key, nonce),
                failed=True,
                username=username,
            )
        response = RedirectResponse(safe_next(next), status_code=303)
        _set_cookie(response, SESSION_COOKIE, auth.create_session(store, user), max_age=None)
        response.delete_cookie(LOGIN_NONCE_COOKIE, path="/")
        return response

    @app.post("/logout")
    def logout(request: Request, _user: viewer, csrf_token: Annotated[str, Form()] = "") -> Response:
        check_csrf(request, csrf_token)
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            auth.end_session(store, token)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    def _set_cookie(response: Response, name: str, value: str, max_age: int | None) -> None:
        response.set_cookie(
            name, value, max_age=max_age, httponly=True, samesite="lax", secure=secure_cookies, path="/"
        )

    @app.get("/language")
    def language(request: Request, lang: str = "", next: str = "/") -> Response:
        response = RedirectResponse(safe_next(next), status_code=303)
        if lang in i18n.LANGUAGES:
            response.set_cookie(
                i18n.COOKIE, lang, max_age=365 * 86400, httponly=True, samesite="lax", secure=secure_cookies
            )
        else:
            response.delete_cookie(i18n.COOKIE, path="/")
        return response

    # -- overview -------------------------------------------------------------------------------------

    def scope(
        source: str | None, channel: str | None, period: str, grain: str
    ) -> tuple[metrics_view.Scope, queries.Filters]:
        chosen = metrics_view.Scope.build(
            store, source=source or None, channel=channel or None, period=period, grain=grain
        )
        return chosen, queries.filter_options(store, chosen.source)

    @app.get("/", response_class=HTMLResponse)
    async def overview(
        request: Request,
        user: viewer,
        source: str = "",
        channel: str = "",
        period: str = metrics_view.DEFAULT_PERIOD,
        grain: str = metrics_view.DEFAULT_GRAIN,
    ) -> Response:
        def page() -> str:
            chosen, filters = scope(source, channel, period, grain)

            def main_html() -> Markup:
                titles = {key: gettext(request, title) for key, title in labels.CHARTS.items()}
                view = metrics_view.overview(store, chosen, titles)
                values = {"scope": chosen, "filters": filters, "view": view, "periods": metrics_view.PERIODS}
                return Markup(render_text(request, "_overview_main.html", **values))

            # The content is the same for every user of a language: rendered once per store state.
            main = views.get(store, ("overview-html", chosen, language_of(request)), main_html)
            return render_text(request, "overview.html", main_html=main)

        return await ready_page(request, user, OVERVIEW_CACHE_CONTROL, page)

    # -- members --------------------------------------------------------------------------------------

    @app.get("/members", response_class=HTMLResponse)
    async def member_list(
        request: Request,
        user: viewer,
        q: str = "",
        segment: str = "",
        source: str = "",
        sort: str = "last_activity",
        order: str = "desc",
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    ) -> Response:
        partial = "hx-request" in request.headers

        def main_html() -> Markup:
            listing = metrics_view.member_page(
                store,
                search=q,
                segment=segment or None,
                source=source or None,
                sort=sort,
                descending=order != "asc",
                page=_page_number(page),
                per_page=PER_PAGE,
            )
            values = {
                "listing": listing,
                "groups": metrics_view.member_groups(store, source=source or None),
                "filters": queries.filter_options(store),
                "q": q,
                "segment": segment,
                "source": source,
                "sort": sort,
                "order": order,
                "segments": metrics_view.SEGMENTS,
            }
            name = "_member_table.html" if partial else "_members_main.html"
            return Markup(templates.get_template(name).render(page_context(request, values)))

        def whole() -> str:
            # The list only changes with the store: rendered once per language, query and store state.
            key = ("members-html", language_of(request), partial, q, segment, source, sort, order, page)
            main = views.get(store, key, main_html)
            return str(main) if partial else render_text(request, "members.html", main_html=main)

        return await ready_page(request, user, NO_STORE, whole)

    @app.get("/members/{member_id:path}", response_class=HTMLResponse)
    def member_page(request: Request, member_id: str, _user: viewer) -> Response:
        view = queries.member_view(store, member_id)
        if view is None:
            raise NotFound
        summary = metrics_view.member_summary(store, member_id)
        chart = metrics_view.member_timeline_spec(
            view, i18n.Formatter(language_of(request)), gettext(request, labels.CHARTS["timeline"])
        )
        return render(request, "member.html", member=view, summary=summary, chart=chart)

    # -- conversations --------------------------------------------------------------------------------

    @app.get("/conversations", response_class=HTMLResponse)
    def conversation_list(
        request: Request,
        _user: viewer,
        q: str = "",
        source: str = "",
        channel: str = "",
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    ) -> Response:
        listing = queries.conversation_list(
            store, search=q or None, source=source or None, channel=channel or None, page=page, per_page=PER_PAGE
        )
        return render(
            request,
            "conversations.html",
            listing=listing,
            filters=queries.filter_options(store, source or None),
            q=q,
            source=source,
            channel=channel,
        )

    @app.get("/conversations/{conversation_id:path}", response_class=HTMLResponse)
    def conversation_page(request: Request, conversation_id: str, _user: viewer) -> Response:
        thread = queries.thread_view(store, conversation_id)
        if thread is None:
            raise NotFound
        return render(request, "conversation.html", thread=thread)

    # -- inbox ----------------------------------------------------------------------------------------

    def inbox_state_filter(show: str) -> str | None:
        return show if show in inbox.STATES else None

    @app.get("/inbox", response_class=HTMLResponse)
    def inbox_page(
        request: Request,
        user: viewer,
        source: str = "",
        channel: str = "",
        show: str = "open",
        done: str = "",
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    ) -> Response:
        everything = inbox.items(store, source=source or None, channel=channel or None)
        wanted = inbox_state_filter(show)
        chosen = [item for item in everything if wanted is None or item.state == wanted]
        start = (page - 1) * PER_PAGE
        listing = queries.Page(chosen[start : start + PER_PAGE], len(chosen), page, PER_PAGE)
        counts = {state: sum(1 for item in everything if item.state == state) for state in inbox.STATES}
        return render(
            request,
            "inbox.html",
            listing=listing,
            filters=queries.filter_options(store, source or None),
            source=source,
            channel=channel,
            show=wanted or "all",
            counts=counts,
            config=inbox.load_config(store),
            stats=inbox.team_stats(everything, store),
            answerable=inbox.answerable_sources(store) if user.can("triage") else set(),
            people=[account.name for account, _created, disabled in auth.list_users(store) if not disabled],
            notice=labels.NOTICES.get(done),
        )

    @app.get("/api/inbox")
    def inbox_api(_user: viewer, source: str = "", channel: str = "", state: str = "open") -> Response:
        chosen = inbox_state_filter(state)
        if state not in (*inbox.STATES, "all"):
            return Response(f"unknown state {state!r}", status_code=400, media_type="text/plain")
        found = inbox.items(store, source=source or None, channel=channel or None, state=chosen)
        return JSONResponse({"items": [inbox.item_json(item) for item in found], "total": len(found)})

    @app.post("/inbox/state")
    def inbox_state(
        request: Request,
        user: triager,
        activity_id: Annotated[str, Form()],
        state: Annotated[str, Form()],
        assignee: Annotated[str, Form()] = "",
        csrf_token: Annotated[str, Form()] = "",
        next: Annotated[str, Form()] = "/inbox",
    ) -> Response:
        check_csrf(request, csrf_token)
        try:
            inbox.set_state(store, activity_id, state, by=user.name, assignee=assignee.strip() or None)
        except inbox.InboxError as problem:
            return Response(str(problem), status_code=400, media_type="text/plain")
        if "hx-request" in request.headers:
            return HTMLResponse("")
        return RedirectResponse(safe_next(next), status_code=303)

    @app.post("/inbox/answer")
    def inbox_answer(
        request: Request,
        user: triager,
        activity_id: Annotated[str, Form()],
        text: Annotated[str, Form()] = "",
        csrf_token: Annotated[str, Form()] = "",
    ) -> Response:
        check_csrf(request, csrf_token)
        try:
            inbox.answer(store, activity_id, text, by=user.name)
        except inbox.InboxError as problem:
            return render(request, "error.html", 400, message=str(problem))
        return RedirectResponse("/inbox?done=answered", status_code=303)

    @app.get("/admin/inbox", response_class=HTMLResponse)
    def inbox_admin(request: Request, _user: administrator, done: str = "") -> Response:
        return render(request, "inbox_admin.html", **inbox_admin_values(), error=None, notice=labels.NOTICES.get(done))

    def inbox_admin_values() -> dict[str, Any]:
        return {
            "config": inbox.load_config(store),
            "team": inbox.team(store),
            "people": [account.name for account, _created, disabled in auth.list_users(store) if not disabled],
        }

    @app.post("/admin/inbox/settings")
    def inbox_settings(
        request: Request,
        user: administrator,
        timezone: Annotated[str, Form()] = "",
        days: Annotated[str, Form()] = "",
        hours: Annotated[str, Form()] = "",
        target_hours: Annotated[str, Form()] = "",
        holidays: Annotated[str, Form()] = "",
        csrf_token: Annotated[str, Form()] = "",
    ) -> Response:
        check_csrf(request, csrf_token)
        try:
            target = float(target_hours.replace(",", ".")) if target_hours.strip() else None
            inbox.configure(
                store,
                by=user.name,
                timezone=timezone.strip() or None,
                days=days.strip() or None,
                hours=hours.strip() or None,
                target_hours=target,
                holidays=holidays.replace(",", " ").split(),
            )
        except (inbox.InboxError, ValueError) as problem:
            return render(request, "inbox_admin.html", 400, **inbox_admin_values(), error=str(problem), notice=None)
        return RedirectResponse("/admin/inbox?done=saved", status_code=303)

    @app.post("/admin/inbox/team")
    def inbox_team(
        request: Request,
        user: administrator,
        identity_id: Annotated[str, Form()] = "",
        name: Annotated[str, Form()] = "",
        action: Annotated[str, Form()] = "link",
        csrf_token: Annotated[str, Form()] = "",
    ) -> Response:
        check_csrf(request, csrf_token)
        try:
            if action == "unlink":
                inbox.unlink(store, identity_id)
            else:
                inbox.link(store, name, identity_id, by=user.name)
        except inbox.InboxError as problem:
            return render(request, "inbox_admin.html", 400, **inbox_admin_values(), error=str(problem), notice=None)
        return RedirectResponse(f"/admin/inbox?done={'unlinked' if action == 'unlink' else 'linked'}", status_code=303)

    # -- moderation -----------------------------------------------------------------------------------

    @app.get("/moderation", response_class=HTMLResponse)
    def moderation_page(request: Request, _user: viewer, state: str = "pending", done: str = "") -> Response:
        chosen = state if state in moderation.STATES else None
        return render(
            request,
            "moderation.html",
            queue=moderation.queue(store, chosen, limit=500),
            state=chosen or "all",
            notice=labels.NOTICES.get(done),
        )

    @app.post("/moderation/decide")
    def moderation_decide(
        request: Request,
        user: moderator,
        item_id: Annotated[int, Form()],
        decision: Annotated[str, Form()],
        reason: Annotated[str, Form()] = "",
        csrf_token: Annotated[str, Form()] = "",
    ) -> Response:
        check_csrf(request, csrf_token)
        try:
            notice = moderation_view.decide(store, item_id, decision, user.name, reason.strip()[:2000])
        except moderation.ModerationError as problem:
            return render(request, "error.html", 400, message=str(problem))
        return RedirectResponse(f"/moderation?done={notice}", status_code=303)

    @app.get("/moderation/log", response_class=HTMLResponse)
    def audit_page(
        request: Request,
        _user: viewer,
        action: str = "",
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    ) -> Response:
        listing = queries.audit_page(store, action=action or None, page=page, per_page=PER_PAGE)
        return render(request, "audit.html", listing=listing, action=action, actions=queries.audit_actions(store))

    # -- reports --------------------------------------------------------------------------------------

    @app.get("/reports", response_class=HTMLResponse)
    def reports_page(request: Request, _user: viewer) -> Response:
        return render(
            request,
            "reports.html",
            filters=queries.filter_options(store),
            periods=metrics_view.PERIODS,
            formats=reports.FORMATS,
        )

    @app.get("/reports/{report}.{extension}")
    def download(
        request: Request,
        report: str,
        extension: str,
        _user: viewer,
        source: str = "",
        channel: str = "",
        period: str = "all",
        grain: str = "week",
    ) -> Response:
        if extension not in reports.FORMATS or report not in reports.REPORTS:
            raise NotFound
        chosen = metrics_view.Scope.build(
            store, source=source or None, channel=channel or None, period=period, grain=grain
        )
        table = reports.table(store, report, chosen)
        body, media_type = reports.encode(table, extension)
        filename = f"parvis-{report}-{date.today().isoformat()}.{extension}"
        return Response(
            body, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
        )

    # -- accounts -------------------------------------------------------------------------------------

    @app.get("/admin/users", response_class=HTMLResponse)
    def users_page(request: Request, _user: administrator) -> Response:
        return render(request, "users.html", accounts=auth.list_users(store), roles=auth.ROLES, error=None)

    @app.post("/admin/users")
    def add_user(
        request: Request,
        _user: administrator,
        name: Annotated[str, Form()] = "",
        password: Annotated[str, Form()] = "",
        role: Annotated[str, Form()] = "",
        csrf_token: Annotated[str, Form()] = "",
    ) -> Response:
        check_csrf(request, csrf_token)
        try:
            auth.add_user(store, name, password, role)
        except auth.AccountError as problem:
            return render(
                request, "users.html", 400, accounts=auth.list_users(store), roles=auth.ROLES, error=str(problem)
            )
        return RedirectResponse("/admin/users", status_code=303)

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response("ok", media_type="text/plain")

    return app
