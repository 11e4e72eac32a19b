"""Extensions, created unbound and attached to the app in ``create_app``."""

from __future__ import annotations

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    # Named constraints so Alembic migrations are the same on SQLite and PostgreSQL.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
limiter = Limiter(key_func=get_remote_address)


class PaywallApi(Api):  # type: ignore[misc]
    """flask-smorest's Api, documenting our error body instead of its own."""

    from paywall.schemas import ApiErrorSchema as ERROR_SCHEMA  # noqa: N811

    # No catch-all "default" response: each operation lists the statuses it really answers,
    # so the API fuzz test can hold responses to the document.
    DEFAULT_ERROR_RESPONSE_NAME = None


api = PaywallApi()
csrf = CSRFProtect()
