"""How the news site asks the paywall service for an entitlement token (server to server)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

#: The service rotates a session's value now and then; the new one comes back in this header.
SESSION_TOKEN_HEADER = "Paywall-Session-Token"  # noqa: S105 - a header name


@dataclass(frozen=True)
class TokenAnswer:
    token: str | None
    error_code: str | None = None  # session_evicted, session_revoked, session_expired, ...
    reason: str | None = None  # why a session ended: password_changed, revoked, evicted, ...
    session_token: str | None = None  # the session's new value, when this call rotated it


class PaywallClient:
    """``on_rotation(new_value)`` is called whenever an answer carries a rotated session value
    (any call made with a reader's session can rotate it): store it where the reader's next
    request will bring it, i.e. the session cookie, and use it for the rest of this request."""

    def __init__(
        self,
        api_url: str,
        timeout: float = 3.0,
        on_rotation: Callable[[str], None] | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self.on_rotation = on_rotation
        self.http = requests.Session()
        self.http.hooks["response"].append(self._note_rotation)

    def _note_rotation(self, response: requests.Response, *_args: Any, **_kwargs: Any) -> None:
        new_value = response.headers.get(SESSION_TOKEN_HEADER)
        if new_value and self.on_rotation is not None:
            self.on_rotation(new_value)

    def entitlement_token(self, session_value: str) -> TokenAnswer:
        """A fresh token for the reader's device session, or why there is none."""
        try:
            response = self.http.post(
                self.api_url + "/api/v1/entitlements/token",
                headers={"Authorization": f"Bearer {session_value}"},
                timeout=self.timeout,
            )
        except requests.RequestException:
            return TokenAnswer(None, "paywall_unreachable")
        if response.status_code == 200:
            body = response.json()
            rotated = body.get("session_token") or response.headers.get(SESSION_TOKEN_HEADER)
            return TokenAnswer(body["token"], session_token=rotated)
        return TokenAnswer(None, _error_code(response), _reason(response))

    def meter_read(self, session_value: str, article: str) -> dict[str, Any] | None:
        """Count a metered read for the signed-in reader; None if the service did not answer."""
        try:
            response = self.http.post(
                self.api_url + "/api/v1/meter/reads",
                json={"article": article},
                headers={"Authorization": f"Bearer {session_value}"},
                timeout=self.timeout,
            )
        except requests.RequestException:
            return None
        return response.json() if response.status_code == 200 else None  # type: ignore[no-any-return]

    def give_gift(self, session_value: str, article: str) -> tuple[int, dict[str, Any]]:
        """Make a gift link for the signed-in subscriber: (status, body); 503 if unreachable."""
        try:
            response = self.http.post(
                self.api_url + "/api/v1/gifts",
                json={"article": article},
                headers={"Authorization": f"Bearer {session_value}"},
                timeout=self.timeout,
            )
            return response.status_code, response.json()
        except (requests.RequestException, ValueError):
            return 503, {"error": {"code": "paywall_unreachable", "message": ""}}

    def open_gift(self, token: str, article: str, visitor: str) -> tuple[int, dict[str, Any]]:
        """Ask the service whether a gift link opens ``article`` for this browser."""
        try:
            response = self.http.post(
                self.api_url + "/api/v1/gifts/open",
                json={"token": token, "article": article, "visitor": visitor},
                timeout=self.timeout,
            )
            return response.status_code, response.json()
        except (requests.RequestException, ValueError):
            return 503, {"error": {"code": "paywall_unreachable", "message": ""}}

    def gifts(self, session_value: str) -> dict[str, Any] | None:
        """The subscriber's gift links and allowance; None if the service said no."""
        try:
            response = self.http.get(
                self.api_url + "/api/v1/gifts",
                headers={"Authorization": f"Bearer {session_value}"},
                timeout=self.timeout,
            )
        except requests.RequestException:
            return None
        return response.json() if response.status_code == 200 else None  # type: ignore[no-any-return]

    def revoke_gift(self, session_value: str, gift_id: str) -> int:
        try:
            response = self.http.delete(
                self.api_url + f"/api/v1/gifts/{gift_id}",
                headers={"Authorization": f"Bearer {session_value}"},
                timeout=self.timeout,
            )
        except requests.RequestException:
            return 503
        return response.status_code

    def devices(self, session_value: str) -> dict[str, Any] | None:
        response = self.http.get(
            self.api_url + "/api/v1/sessions",
            headers={"Authorization": f"Bearer {session_value}"},
            timeout=self.timeout,
        )
        return response.json() if response.status_code == 200 else None

    def sign_out(self, session_value: str, session_id: str) -> int:
        response = self.http.delete(
            self.api_url + f"/api/v1/sessions/{session_id}",
            headers={"Authorization": f"Bearer {session_value}"},
            timeout=self.timeout,
        )
        return response.status_code

    # -- story notifications -------------------------------------------------------------------
    def vapid_key(self) -> str | None:
        response = self.http.get(
            self.api_url + "/api/v1/notifications/vapid-key", timeout=self.timeout
        )
        return str(response.json()["public_key"]) if response.status_code == 200 else None

    def plans(self) -> list[dict[str, Any]]:
        try:
            response = self.http.get(self.api_url + "/api/v1/plans", timeout=self.timeout)
        except requests.RequestException:
            return []
        return list(response.json().get("plans", [])) if response.status_code == 200 else []

    def push_subscriptions(self, session_value: str) -> list[dict[str, Any]]:
        response = self.http.get(
            self.api_url + "/api/v1/notifications/push-subscriptions",
            headers={"Authorization": f"Bearer {session_value}"},
            timeout=self.timeout,
        )
        return list(response.json()["subscriptions"]) if response.status_code == 200 else []

    def push_subscribe(self, session_value: str, body: dict[str, Any]) -> tuple[int, Any]:
        response = self.http.post(
            self.api_url + "/api/v1/notifications/push-subscriptions",
            json=body,
            headers={"Authorization": f"Bearer {session_value}"},
            timeout=self.timeout,
        )
        return response.status_code, response.json()

    def push_unsubscribe(self, session_value: str, subscription_id: str) -> int:
        response = self.http.delete(
            self.api_url + f"/api/v1/notifications/push-subscriptions/{subscription_id}",
            headers={"Authorization": f"Bearer {session_value}"},
            timeout=self.timeout,
        )
        return response.status_code


def _error_code(response: requests.Response) -> str:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return f"http_{response.status_code}"


def _reason(response: requests.Response) -> str | None:
    try:
        reason = response.json().get("reason")
    except (ValueError, AttributeError):
        return None
    return str(reason) if reason else None
