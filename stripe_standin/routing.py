"""A tiny route table shared by the REST modules (``routes_*.py``) and ``api.py``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Handler = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class Route:
    rule: str
    methods: tuple[str, ...]
    handler: Handler


class Routes(list[Route]):
    """``@routes.add("/v1/things/<id>", "GET")`` registers ``handler(store, params, id=...)``."""

    def add(self, rule: str, *methods: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.append(Route(rule, methods, handler))
            return handler

        return register
