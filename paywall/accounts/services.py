"""Reader accounts: sign-up, login, email verification, password reset."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from paywall.accounts import emails
from paywall.accounts.links import (
    LinkSigner,
    LinkTokenInvalid,
    LinkTokenUsed,
    hash_binding,
    token_digest,
)
from paywall.accounts.models import Account, UsedToken
from paywall.accounts.passwords import (
    PasswordHashing,
    check_policy,
    email_hash,
    normalise_email,
)
from paywall.clock import utcnow
from paywall.devices.models import ACCOUNT_DELETED
from paywall.errors import PaywallError
from paywall.outbox.models import OutboxEmail
from paywall.outbox.services import Outbox
from paywall.ports import billing
from paywall.queue import defer
from paywall.types import DbSession

log = logging.getLogger(__name__)

#: The job that emails a reset link (paywall.accounts.tasks).
SEND_RESET_LINK = "accounts.send_reset_link"


class InvalidCredentials(PaywallError):
    code, status, message = "invalid_credentials", 401, "The email or password is not correct."


class AccountService:
    """Every rule about accounts. Flushes; the request commits."""

    def __init__(
        self,
        session: DbSession,
        *,
        hashing: PasswordHashing,
        outbox: Outbox,
        verify_links: LinkSigner,
        reset_links: LinkSigner,
        public_url: str,
        end_all_sessions: Callable[..., int],
        end_other_sessions: Callable[[str, str | None], int],
        secret_key: str = "",
        email_links: LinkSigner | None = None,
        erase_elsewhere: Callable[[Account], None] = lambda _account: None,
        export_elsewhere: Callable[[Account], dict[str, Any]] = lambda _account: {},
    ) -> None:
        self.session = session
        self.secret_key = secret_key
        self.hashing = hashing
        self.outbox = outbox
        self.verify_links = verify_links
        self.reset_links = reset_links
        self.public_url = public_url.rstrip("/")
        self.end_all_sessions = end_all_sessions
        self.end_other_sessions = end_other_sessions
        self.email_links = email_links or LinkSigner("unused", "change-email", 0)
        self.erase_elsewhere = erase_elsewhere
        self.export_elsewhere = export_elsewhere

    def get(self, account_id: str) -> Account | None:
        return self.session.get(Account, account_id)

    def find_by_email(self, email: str) -> Account | None:
        try:
            normalised = normalise_email(email)
        except ValueError:
            return None
        return self.session.scalar(select(Account).where(Account.email == normalised))

    def sign_up(self, email: str, password: str, next_url: str | None = None) -> None:
        """Create the account and send a verification link, or, if the address is taken,
        tell its owner. The caller cannot tell which happened (no account enumeration)."""
        normalised = normalise_email(email)
        check_policy(password, normalised)
        # Hash in both branches, so the response time does not tell the two apart.
        password_hash = self.hashing.hash(password)
        existing = self.find_by_email(normalised)
        if existing is None:
            account = Account(email=normalised, password_hash=password_hash)
            try:
                with self.session.begin_nested():
                    self.session.add(account)
            except IntegrityError:  # a concurrent sign-up of the same address won
                existing = self.find_by_email(normalised)
            else:
                self.send_verification(account, next_url)
                return
        if existing is not None:
            email_ = emails.signup_attempt(self._link("/login"), self._link("/forgot-password"))
            self.outbox.enqueue(to=existing.email, **email_._asdict())

    def authenticate(self, email: str, password: str) -> Account:
        """The account for these credentials; upgrades its hash if the parameters changed."""
        account = self.find_by_email(email)
        if not self.hashing.verify(account.password_hash if account else None, password):
            # Log who was targeted without storing the typed address in clear.
            log.info(
                "login failed",
                extra={
                    "event": "login_failed",
                    "account_id": account.id if account else None,
                    "email_hash": email_hash(email, self.secret_key),
                },
            )
            raise InvalidCredentials()
        assert account is not None  # noqa: S101 - verify() is False without an account
        if self.hashing.needs_rehash(account.password_hash):
            account.password_hash = self.hashing.hash(password)
            self.session.flush()
        log.info("login succeeded", extra={"event": "login", "account_id": account.id})
        return account

    def change_password(
        self, account: Account, current: str, new: str, *, keep_session_id: str | None
    ) -> int:
        """Change the password (the current one is required) and sign out every other device;
        returns how many were signed out. Tells the reader by email."""
        if not self.hashing.verify(account.password_hash, current):
            # 422, not 401: the session is fine, a field is wrong.
            raise PaywallError(
                "The current password is not correct.",
                code="validation_error",
                status=422,
                extra={"fields": {"current_password": ["Not correct."]}},
            )
        check_policy(new, account.email)
        account.password_hash = self.hashing.hash(new)
        account.password_changed_at = utcnow()
        ended = self.end_other_sessions(account.id, keep_session_id)
        self.outbox.enqueue(to=account.email, **emails.password_changed()._asdict())
        self.session.flush()
        log.info("password changed", extra={"event": "password_changed", "account_id": account.id})
        return ended

    def _check_password(self, account: Account, password: str, field: str = "password") -> None:
        if not self.hashing.verify(account.password_hash, password):
            # 422, not 401: the session is fine, a field is wrong.
            raise PaywallError(
                "The password is not correct.",
                code="validation_error",
                status=422,
                extra={"fields": {field: ["Not correct."]}},
            )

    def request_email_change(self, account: Account, new_email: str, password: str) -> None:
        """Send a confirmation link to ``new_email`` and tell the current address. Nothing
        changes until the link is opened; a taken address is told so, and the caller cannot
        tell (no account enumeration)."""
        self._check_password(account, password)
        normalised = normalise_email(new_email)
        if normalised == account.email:
            raise PaywallError(
                "That is already your address.",
                code="validation_error",
                status=422,
                extra={"fields": {"new_email": ["That is already your address."]}},
            )
        old_mail = emails.email_change_requested(normalised, self._link("/forgot-password"))
        self.outbox.enqueue(to=account.email, **old_mail._asdict())
        if self.find_by_email(normalised) is not None:
            taken = emails.new_address_taken(self._link("/login"))
            self.outbox.enqueue(to=normalised, **taken._asdict())
            return
        token = self.email_links.dumps({"a": account.id, "o": account.email, "n": normalised})
        mail = emails.confirm_new_email(self._link("/confirm-email", token=token))
        self.outbox.enqueue(to=normalised, **mail._asdict())
        self.session.flush()

    def check_email_change(self, token: str) -> tuple[Account, str]:
        """The account and new address a change link is for; raises if the link is expired,
        used, garbage or overtaken by another change."""
        data = self.email_links.loads(token)
        account = self.get(str(data.get("a")))
        if account is None or account.email != data.get("o") or account.deleted_at:
            raise LinkTokenUsed("This link has already been used.")
        if self._is_used(token, self.email_links.purpose):
            raise LinkTokenUsed("This link has already been used.")
        return account, str(data.get("n"))

    def confirm_email_change(self, token: str) -> Account:
        account, new_email = self.check_email_change(token)
        old_email = account.email
        if self.find_by_email(new_email) is not None:
            raise PaywallError(
                "That address now belongs to another account.", code="email_taken", status=409
            )
        self._use_once(token, self.email_links.purpose)
        account.email = new_email
        account.email_verified_at = utcnow()  # opening the link proved the new address
        self.session.flush()
        self.outbox.enqueue(to=old_email, **emails.email_changed(new_email)._asdict())
        log.info("email changed", extra={"event": "email_changed", "account_id": account.id})
        return account

    def check_link(self, token: str, purpose: str) -> None:
        """Refuse a verification or reset link that is garbage, expired or used, before the
        reader is asked for anything."""
        if purpose == self.reset_links.purpose:
            data = self.reset_links.loads(token)
            account = self.get(str(data.get("a")))
            if account is None or not self._bound(account, data.get("p")):
                raise LinkTokenUsed("This link has already been used.")
        else:
            data = self.verify_links.loads(token)
            account = self.get(str(data.get("a")))
            if account is None or account.email != data.get("e"):
                raise LinkTokenInvalid("This link is not valid.")
        if self._is_used(token, purpose):
            raise LinkTokenUsed("This link has already been used.")

    def delete(self, account: Account, password: str) -> None:
        """Delete the account: cancel billing, sign out every device, erase personal data.
        What finance must keep (Stripe customer and subscription ids, stored webhook events,
        the invoices at Stripe) stays, tied to an anonymous id."""
        self._check_password(account, password)
        self.erase_elsewhere(account)
        self.end_all_sessions(account.id, ACCOUNT_DELETED)
        address = account.email
        self.session.execute(delete(OutboxEmail).where(OutboxEmail.to == address))
        account.email = f"erased-{account.id}@erased.invalid"
        account.password_hash = "!erased"  # noqa: S105 - matches no password (not argon2)
        account.email_verified_at = None
        account.deleted_at = utcnow()
        self.session.flush()
        self.outbox.enqueue(to=address, **emails.account_deleted()._asdict())
        log.info("account deleted", extra={"event": "account_deleted", "account_id": account.id})

    def export(self, account: Account) -> dict[str, Any]:
        """Everything the service holds about the reader, as JSON-ready data."""
        return {
            "account": {
                "id": account.id,
                "email": account.email,
                "email_verified_at": _iso(account.email_verified_at),
                "created_at": _iso(account.created_at),
                "password_changed_at": _iso(account.password_changed_at),
            },
            **self.export_elsewhere(account),
            "emails": [
                {"kind": e.kind, "subject": e.subject, "sent_at": _iso(e.sent_at)}
                for e in self.session.scalars(
                    select(OutboxEmail).where(OutboxEmail.to == account.email)
                )
            ],
        }

    def send_verification(self, account: Account, next_url: str | None = None) -> None:
        """``next_url`` (already validated): where the link returns the reader afterwards."""
        token = self.verify_links.dumps({"a": account.id, "e": account.email})
        query = {"token": token, **({"next": next_url} if next_url else {})}
        email_ = emails.verify_email(self._link("/verify-email", **query))
        self.outbox.enqueue(to=account.email, **email_._asdict())

    def verify_email(self, token: str) -> Account:
        data = self.verify_links.loads(token)
        account = self.get(str(data.get("a")))
        if account is None or account.email != data.get("e"):
            raise LinkTokenInvalid("This link is not valid.")
        self._use_once(token, self.verify_links.purpose)
        if account.email_verified_at is None:
            account.email_verified_at = utcnow()
        self.session.flush()
        return account

    def request_reset(self, email: str) -> None:
        """Queue the reset for a worker; silent either way. The request does the same work for
        every valid address (one job row, whether or not it has an account), so neither its
        answer nor its timing tells who has an account (issue 11)."""
        try:
            normalised = normalise_email(email)
        except ValueError:
            return  # no account can have this address: nothing to hide
        defer(SEND_RESET_LINK, normalised, session=self.session)

    def send_reset_link(self, email: str) -> bool:
        """The worker's half of :meth:`request_reset`: email a link if the address has an
        account. Returns whether it queued one."""
        account = self.find_by_email(email)
        if account is None:
            return False
        token = self.reset_links.dumps(
            {"a": account.id, "p": hash_binding(account.password_hash, self.secret_key)}
        )
        email_ = emails.reset_password(self._link("/reset-password", token=token))
        self.outbox.enqueue(to=account.email, **email_._asdict())
        self.session.flush()
        return True

    def reset_password(self, token: str, new_password: str) -> Account:
        """Set a new password from a reset link, sign out every device, tell the reader."""
        data = self.reset_links.loads(token)
        account = self.get(str(data.get("a")))
        # The link is bound to the hash it was issued for: a changed password kills it.
        if account is None or not self._bound(account, data.get("p")):
            raise LinkTokenUsed("This link has already been used.")
        check_policy(new_password, account.email)
        self._use_once(token, self.reset_links.purpose)
        account.password_hash = self.hashing.hash(new_password)
        account.password_changed_at = utcnow()
        # Whoever could open the inbox proved ownership of the address.
        account.email_verified_at = account.email_verified_at or utcnow()
        self.end_all_sessions(account.id)
        self.outbox.enqueue(to=account.email, **emails.password_changed()._asdict())
        log.info("password reset", extra={"event": "password_reset", "account_id": account.id})
        self.session.flush()
        return account

    def _bound(self, account: Account, binding: object) -> bool:
        return isinstance(binding, str) and hmac.compare_digest(
            hash_binding(account.password_hash, self.secret_key), binding
        )

    def _signer(self, purpose: str) -> LinkSigner | None:
        signers = (self.verify_links, self.reset_links, self.email_links)
        return next((s for s in signers if s is not None and s.purpose == purpose), None)

    def _used_digests(self, token: str, purpose: str) -> list[str]:
        """The canonical digest, and the raw string's for links used before it existed."""
        signer = self._signer(purpose)
        canonical = signer.canonical(token) if signer is not None else token
        return [token_digest(canonical), token_digest(token)]

    def _is_used(self, token: str, purpose: str) -> bool:
        digests = self._used_digests(token, purpose)
        return (
            self.session.scalar(select(UsedToken).where(UsedToken.digest.in_(digests))) is not None
        )

    def _use_once(self, token: str, purpose: str) -> None:
        if self._is_used(token, purpose):
            raise LinkTokenUsed("This link has already been used.")
        try:
            with self.session.begin_nested():
                self.session.add(
                    UsedToken(digest=self._used_digests(token, purpose)[0], purpose=purpose)
                )
        except IntegrityError as exc:
            raise LinkTokenUsed("This link has already been used.") from exc

    def _link(self, path: str, **query: str) -> str:
        return self.public_url + path + ("?" + urlencode(query) if query else "")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def account_service() -> AccountService:
    """The request's AccountService, built from the app's configuration."""
    from flask import current_app, g

    from paywall.accounts.links import CHANGE_EMAIL, RESET_PASSWORD, VERIFY_EMAIL
    from paywall.devices.models import PASSWORD_CHANGED
    from paywall.devices.services import device_service
    from paywall.extensions import db

    if "account_service" not in g:
        cfg = current_app.config
        hashing = current_app.extensions.get("paywall.hashing")
        if hashing is None:
            hashing = PasswordHashing(
                cfg["ARGON2_TIME_COST"], cfg["ARGON2_MEMORY_COST"], cfg["ARGON2_PARALLELISM"]
            )
            current_app.extensions["paywall.hashing"] = hashing
        g.account_service = AccountService(
            db.session,
            hashing=hashing,
            outbox=Outbox(db.session),
            verify_links=LinkSigner(cfg["SECRET_KEY"], VERIFY_EMAIL, cfg["VERIFY_TOKEN_MAX_AGE"]),
            reset_links=LinkSigner(cfg["SECRET_KEY"], RESET_PASSWORD, cfg["RESET_TOKEN_MAX_AGE"]),
            public_url=cfg["PUBLIC_URL"],
            secret_key=cfg["SECRET_KEY"],
            end_all_sessions=lambda account_id, reason=PASSWORD_CHANGED: device_service().end_all(
                account_id, reason
            ),
            end_other_sessions=lambda account_id, keep: device_service().end_all(
                account_id, PASSWORD_CHANGED, keep_session_id=keep
            ),
            email_links=LinkSigner(cfg["SECRET_KEY"], CHANGE_EMAIL, cfg["VERIFY_TOKEN_MAX_AGE"]),
            erase_elsewhere=billing().erase_account,
            export_elsewhere=billing().export_account,
        )
    return g.account_service  # type: ignore[no-any-return]
