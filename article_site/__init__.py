"""A small news site: the frontend side of the paywall (a demo, not part of the service).

It renders the article with the first paragraphs free and the rest premium, deciding on its own
server with the offline verifier whether this reader may read the premium paragraphs. A reader
who may not never receives them: not in HTML, JSON, print view or feed.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, abort, g, jsonify, redirect, render_template, request, url_for
from flask_wtf import CSRFProtect

from article_site.content import Article, articles
from article_site.gifts import VISITOR_COOKIE, GiftDecision, new_visitor, open_gift
from article_site.meter import METER_COOKIE, AnonymousMeter, MeterDecision, account_read
from article_site.paywall_client import PaywallClient
from article_site.readers import TOKEN_COOKIE, Reader, identify, token_cookie
from paywall.entitlements.verifier import DEFAULT_LEEWAY, RemoteKeys, can_read

#: The secret the site once fell back to: published in the source, refused everywhere.
OLD_DEMO_SECRET = "demo-only-article-site-secret"  # noqa: S105


class SiteConfigError(RuntimeError):
    """The site's configuration is unsafe outside demo mode; the message names the setting."""


def check_site_config(config: dict[str, Any]) -> None:
    """Refuse what the service refuses outside demo mode (issue 11: the site fell back to
    hard-coded secrets and never refused them). In demo, fill in per-process values. The site
    holds no token keys: it verifies with the service's public JWKS."""
    secret = config.get("SECRET_KEY")
    if config.get("DEMO"):
        if not secret or secret == OLD_DEMO_SECRET:
            config["SECRET_KEY"] = secrets.token_hex(32)
        return
    if not secret or secret == OLD_DEMO_SECRET or len(str(secret)) < 32:
        raise SiteConfigError(
            "ARTICLE_SITE_SECRET_KEY is missing, a published default, or shorter than 32 characters"
        )


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(
        # One demo switch for the service and the site (``make run`` sets it).
        DEMO=os.environ.get("PAYWALL_DEMO", "").lower() in ("1", "true", "yes"),
        SECRET_KEY=os.environ.get("ARTICLE_SITE_SECRET_KEY") or None,
        SESSION_COOKIE_NAME="site_session",
        PAYWALL_URL=os.environ.get("ARTICLE_SITE_PAYWALL_URL", "http://127.0.0.1:8000"),
        PAYWALL_API_URL=os.environ.get("ARTICLE_SITE_PAYWALL_API_URL"),
        SITE_URL=os.environ.get("PAYWALL_SITE_URL", "http://127.0.0.1:8001"),
        # The service's public keys (default: <PAYWALL_API_URL>/.well-known/jwks.json).
        JWKS_URL=os.environ.get("ARTICLE_SITE_JWKS_URL"),
        # Seconds of clock difference tolerated between this server and the service.
        TOKEN_LEEWAY=float(os.environ.get("ARTICLE_SITE_TOKEN_LEEWAY", str(DEFAULT_LEEWAY))),
        DEVICE_COOKIE_NAME=os.environ.get("PAYWALL_DEVICE_COOKIE_NAME", "paywall_session"),
        # The service's own cookie settings: a rotated session value is written back to the
        # same cookie (same domain), or the browser would hold two.
        DEVICE_COOKIE_DOMAIN=os.environ.get("PAYWALL_DEVICE_COOKIE_DOMAIN") or None,
        DEVICE_COOKIE_MAX_AGE=int(os.environ.get("PAYWALL_SESSION_ABSOLUTE_LIFETIME", 365 * 86400)),
        COOKIE_SECURE=os.environ.get("ARTICLE_SITE_COOKIE_SECURE", "") == "1",
        METER_LIMIT=int(os.environ.get("PAYWALL_METER_LIMIT", "3")),
        # One brand: the same settings the service reads.
        BRAND_NAME=os.environ.get("PAYWALL_BRAND_NAME", "The Daily Paywall"),
        BRAND_LOGO_URL=os.environ.get("PAYWALL_BRAND_LOGO_URL") or None,
        BRAND_COLOR=os.environ.get("PAYWALL_BRAND_COLOR", "#b3001b"),
        # The publisher key the site follows the revocation feed with (none: no watcher, a
        # revoked token is served until it expires).
        PUBLISHER_KEY=os.environ.get("ARTICLE_SITE_PUBLISHER_KEY") or None,
        REVOCATION_MAX_STALENESS=float(os.environ.get("ARTICLE_SITE_REVOCATION_MAX_STALENESS", 60)),
        REVOCATION_ON_STALE=os.environ.get("ARTICLE_SITE_REVOCATION_ON_STALE", "serve"),
    )
    if config:
        app.config.update(config)
    check_site_config(app.config)
    app.config["PAYWALL_API_URL"] = app.config["PAYWALL_API_URL"] or app.config["PAYWALL_URL"]

    def rotated(new_value: str) -> None:
        """The service replaced the reader's session value during this request."""
        g.rotated_session = new_value
        current = g.get("reader")
        if current is not None and current.session is not None:
            current.session = new_value

    client = PaywallClient(app.config["PAYWALL_API_URL"], on_rotation=rotated)
    keys = RemoteKeys(
        app.config["JWKS_URL"]
        or app.config["PAYWALL_API_URL"].rstrip("/") + "/.well-known/jwks.json",
        issuer=app.config["PAYWALL_URL"].rstrip("/"),
    )
    cookies = token_cookie(app.config["SECRET_KEY"])
    watcher = _watcher(app)
    anonymous_meter = AnonymousMeter(app.config["SECRET_KEY"], app.config["METER_LIMIT"])
    CSRFProtect(app)

    def reader(wants: str | None = None) -> Reader:
        if "reader" not in g:
            g.reader = identify(
                request,
                cookie_name=app.config["DEVICE_COOKIE_NAME"],
                keys=keys,
                client=client,
                cookies=cookies,
                wants=wants,
                leeway=app.config["TOKEN_LEEWAY"],
                revocations=watcher,
            )
        return g.reader  # type: ignore[no-any-return]

    def paywall_link(path: str, **query: str) -> str:
        return (
            app.config["PAYWALL_URL"].rstrip("/") + path + ("?" + urlencode(query) if query else "")
        )

    @app.context_processor
    def links() -> dict[str, Any]:
        brand = {
            "name": app.config["BRAND_NAME"],
            "logo_url": app.config["BRAND_LOGO_URL"],
            "color": app.config["BRAND_COLOR"],
        }
        return {"paywall_link": paywall_link, "reader": reader(), "brand": brand}

    @app.after_request
    def keep_token(response: Response) -> Response:
        current = g.get("reader")
        if current is not None and current.set_token:
            response.set_cookie(
                TOKEN_COOKIE,
                current.set_token,
                httponly=True,
                samesite="Lax",
                secure=app.config["COOKIE_SECURE"],
                max_age=3600,
            )
        elif current is not None and current.clear_token:
            response.delete_cookie(TOKEN_COOKIE)
        if current is not None and current.clear_session:
            response.delete_cookie(
                app.config["DEVICE_COOKIE_NAME"], domain=app.config["DEVICE_COOKIE_DOMAIN"]
            )
        elif g.get("rotated_session") and not _sets_cookie(
            response, app.config["DEVICE_COOKIE_NAME"]
        ):
            response.set_cookie(
                app.config["DEVICE_COOKIE_NAME"],
                g.rotated_session,
                max_age=app.config["DEVICE_COOKIE_MAX_AGE"],
                secure=app.config["COOKIE_SECURE"],
                httponly=True,
                samesite="Lax",
                domain=app.config["DEVICE_COOKIE_DOMAIN"],
                path="/",
            )
        meter = g.get("meter")
        if meter is not None and meter.cookie:
            response.set_cookie(
                METER_COOKIE,
                meter.cookie,
                httponly=True,
                samesite="Lax",
                secure=app.config["COOKIE_SECURE"],
                max_age=31 * 24 * 3600,
            )
        if g.get("new_visitor"):
            response.set_cookie(
                VISITOR_COOKIE,
                g.new_visitor,
                httponly=True,
                samesite="Lax",
                secure=app.config["COOKIE_SECURE"],
                max_age=365 * 24 * 3600,
            )
        response.headers.setdefault("Vary", "Cookie")
        return response

    def visitor() -> str:
        """This browser's random id, so one browser reopening a gift link counts once."""
        value = request.cookies.get(VISITOR_COOKIE, "")
        if 16 <= len(value) <= 64 and value.replace("-", "").replace("_", "").isalnum():
            return value
        if "new_visitor" not in g:
            g.new_visitor = new_visitor()
        return str(g.new_visitor)

    def gift_of(article: Article) -> GiftDecision | None:
        """The gift link this page was opened with, checked once per request."""
        token = request.args.get("gift")
        if not token:
            return None
        if "gift" not in g:
            g.gift = open_gift(client, token, article.slug, visitor())
        return g.gift  # type: ignore[no-any-return]

    def find(slug: str) -> Article:
        article = articles().get(slug)
        if article is None:
            abort(404)
        return article

    def entitled(article: Article) -> bool:
        if article.access_level != "metered":
            if can_read(reader(wants=article.access_level).claims, article.access_level):
                return True
            gift = gift_of(article)
            return gift is not None and gift.allowed
        # Subscribers read metered articles freely; a gift spends nothing; everyone else
        # spends the monthly meter.
        current = reader(wants="registered")
        if can_read(current.claims, "premium"):
            return True
        gift = gift_of(article)
        if gift is not None and gift.allowed:
            return True
        if "meter" not in g:
            if current.session is not None and current.signed_in:
                g.meter = account_read(
                    client, current.session, article.slug, app.config["METER_LIMIT"]
                )
            else:
                g.meter = anonymous_meter.read(
                    request.cookies.get(METER_COOKIE), article.slug, datetime.now(UTC)
                )
        return bool(g.meter.allowed)

    def meter_of() -> MeterDecision | None:
        return g.get("meter")  # type: ignore[no-any-return]

    def article_context(article: Article, full: bool) -> dict[str, Any]:
        gift: GiftDecision | None = g.get("gift")
        return {
            "article": article,
            "full": full,
            "meter": meter_of(),
            "gift": gift,
            # Print and JSON links keep the gift, so it opens the article in every format.
            "gift_query": {"gift": gift.token} if gift is not None and gift.allowed else {},
            "can_gift": can_read(reader().claims, "premium"),
            "here": app.config["SITE_URL"] + url_for("article_page", slug=article.slug),
        }

    def private(response: Response, premium: bool) -> Response:
        # Premium text must never sit in a shared cache; teasers vary by cookie anyway.
        response.headers["Cache-Control"] = "private, no-store" if premium else "private, no-cache"
        return response

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok")

    @app.get("/")
    def front_page() -> Response:
        return private(Response(render_template("front.html", articles=articles().values())), False)

    @app.get("/news/<slug>")
    def article_page(slug: str) -> Response:
        article = find(slug)
        full = entitled(article)
        return private(
            Response(render_template("article.html", **article_context(article, full))), full
        )

    @app.post("/news/<slug>/gift")
    def gift_article(slug: str) -> Response:
        """'Gift this article': the service makes the link; the page shows it to copy."""
        article = find(slug)
        current = reader()
        if current.session is None:
            return redirect(paywall_link("/login", next=request.url))  # type: ignore[return-value]
        status, body = client.give_gift(current.session, article.slug)
        full = entitled(article)
        context = article_context(article, full)
        if status == 201:
            context["gift_made"] = body
        else:
            error = body.get("error") or {}
            context["gift_error"] = (
                error.get("message") or "We could not make a gift link just now."
            )
        return private(Response(render_template("article.html", **context)), full)

    @app.get("/news/<slug>.json")
    def article_json(slug: str) -> Response:
        article = find(slug)
        full = entitled(article)
        body = {
            "slug": article.slug,
            "headline": article.headline,
            "date": article.date,
            "access_level": article.access_level,
            "entitled": full,
            "gift": None
            if g.get("gift") is None
            else {
                "allowed": g.gift.allowed,
                "expires_at": g.gift.expires_at,
                "reason": None if g.gift.allowed else g.gift.message,
            },
            "meter": None
            if meter_of() is None
            else {
                "allowed": meter_of().allowed,  # type: ignore[union-attr]
                "remaining": meter_of().remaining,  # type: ignore[union-attr]
                "limit": meter_of().limit,  # type: ignore[union-attr]
            },
            "paragraphs": list(article.paragraphs if full else article.teaser),
            "truncated": not full,
        }
        return private(jsonify(body), full)

    @app.get("/news/<slug>/print")
    def article_print(slug: str) -> Response:
        article = find(slug)
        full = entitled(article)
        return private(
            Response(render_template("print.html", article=article, full=full, gift=g.get("gift"))),
            full,
        )

    @app.get("/feed.xml")
    def feed() -> Response:
        xml = render_template("feed.xml", articles=articles().values(), site=app.config["SITE_URL"])
        return private(Response(xml, mimetype="application/rss+xml"), False)

    @app.get("/gifts")
    def gifts() -> Response | str:
        """The subscriber's gift links: who opened them, until when, revoke."""
        current = reader()
        if current.session is None:
            return redirect(paywall_link("/login", next=request.url))  # type: ignore[return-value]
        listing = client.gifts(current.session)
        if listing is None:
            return redirect(paywall_link("/login", next=request.url))  # type: ignore[return-value]
        known = articles()
        return render_template("gifts.html", listing=listing, articles=known)

    @app.post("/gifts/<gift_id>/revoke")
    def revoke_gift(gift_id: str) -> Response:
        current = reader()
        if current.session is not None:
            client.revoke_gift(current.session, gift_id)
        return redirect(url_for("gifts"))  # type: ignore[return-value]

    @app.get("/devices")
    def devices() -> Response | str:
        current = reader()
        if current.session is None:
            return redirect(paywall_link("/login", next=request.url))  # type: ignore[return-value]
        listing = client.devices(current.session)
        if listing is None:
            return redirect(paywall_link("/login", next=request.url))  # type: ignore[return-value]
        return render_template("devices.html", listing=listing)

    @app.post("/devices/<session_id>/sign-out")
    def sign_out(session_id: str) -> Response:
        current = reader()
        if current.session is not None:
            client.sign_out(current.session, session_id)
        return redirect(url_for("devices"))  # type: ignore[return-value]

    @app.post("/logout")
    def logout() -> Response:
        current = reader()
        if current.session is not None:
            client.http.delete(
                app.config["PAYWALL_API_URL"] + "/api/v1/sessions/current",
                headers={"Authorization": f"Bearer {current.session}"},
                timeout=3,
            )
        # Back to the page the reader was on (a local path only: no open redirect).
        back = request.form.get("next", "")
        local = back.startswith("/") and not back.startswith("//") and "\\" not in back
        response = redirect(back if local else url_for("front_page"))
        response.delete_cookie(TOKEN_COOKIE)
        response.delete_cookie(
            app.config["DEVICE_COOKIE_NAME"], domain=app.config["DEVICE_COOKIE_DOMAIN"]
        )
        return response  # type: ignore[return-value]

    from article_site import notifications

    notifications.init_app(app, client, reader)
    return app


def _watcher(app: Flask) -> Any:
    """The revocation feed, followed in the background when the site has a publisher key."""
    key = app.config.get("PUBLISHER_KEY")
    if not key:
        return None
    from paywall.entitlements.watcher import RevocationWatcher

    watcher = RevocationWatcher(
        app.config["PAYWALL_API_URL"],
        key,
        max_staleness=float(app.config["REVOCATION_MAX_STALENESS"]),
        on_stale=app.config["REVOCATION_ON_STALE"],
    ).start()
    app.extensions["revocation_watcher"] = watcher
    return watcher


def _sets_cookie(response: Response, name: str) -> bool:
    """Whether the response already sets (or deletes) cookie ``name``, e.g. a logout."""
    return any(h.startswith(name + "=") for h in response.headers.getlist("Set-Cookie"))
