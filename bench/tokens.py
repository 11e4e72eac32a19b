"""Benchmark 1: the offline token check, in one process.

``Verifier.verify`` and ``Verifier.load`` against a raw HMAC-SHA256 over the same token bytes
(the floor: any verifier must compute it) and against plain itsdangerous ``loads``, in two
cases:

- **repeated token**: the same token on every call, as a frontend sees a reader's token on every
  article view for the token's life;
- **never-seen token**: every call a token the process has never seen (fresh tokens are signed
  before each timed batch), as on the first view after each refresh; no cache can help.

Every repeat times all candidates round-robin, so a noisy neighbour slows them alike; the ratio
is taken per repeat, then the median over repeats.
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
import timeit
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from itsdangerous.encoding import base64_decode

from bench.report import table
from bench.stats import Runs, num

if TYPE_CHECKING:
    from bench.runner import Context

BASELINE = "raw HMAC-SHA256 (hmac.digest, same bytes)"
VERIFY = "Verifier.verify (signature + claims)"
LOAD = "Verifier.load (signature + decoding)"
ITSDANGEROUS = "itsdangerous URLSafeSerializer.loads"
UNCOMPRESSED = "proposal: Verifier.verify on the same claims signed without zlib"


def premium_claims(keys: list[str]) -> dict[str, Any]:
    """Claims exactly as ``EntitlementService.issue`` builds them, for a premium reader."""
    from paywall.entitlements.verifier import AUDIENCE, key_id

    now = int(time.time())
    return {
        "sub": secrets.token_hex(16),
        "sid": secrets.token_hex(16),
        "plan": "premium_monthly",
        "features": ["premium_content", "notifications"],
        "max_devices": 5,
        "iat": now,
        "exp": now + 300,
        "aud": AUDIENCE,
        "kid": key_id(keys[0]),
    }


def uncompressed_signer(keys: list[str]) -> Any:
    """An itsdangerous serializer like the service's that never compresses the payload (what
    ``EntitlementService.issue`` would use if tokens were issued uncompressed). Every
    itsdangerous verifier accepts its tokens: compression is optional, flagged by a leading
    '.'."""
    import hashlib

    from itsdangerous import URLSafeSerializer
    from itsdangerous.encoding import base64_encode
    from itsdangerous.serializer import Serializer

    from paywall.entitlements.verifier import SALT

    class Uncompressed(URLSafeSerializer):
        def dump_payload(self, obj: Any) -> bytes:
            return base64_encode(Serializer.dump_payload(self, obj))

    return Uncompressed(
        list(reversed(keys)), salt=SALT, signer_kwargs={"digest_method": hashlib.sha256}
    )


def _time(
    candidates: dict[str, tuple[str, dict[str, Any]]], calls: int, repeats: int
) -> dict[str, list[float]]:
    """µs per call of each candidate, one value per repeat, candidates round-robin."""
    timers = {name: timeit.Timer(stmt, globals=g) for name, (stmt, g) in candidates.items()}
    for t in timers.values():  # warm up
        t.timeit(max(1, calls // 20))
    out: dict[str, list[float]] = {name: [] for name in candidates}
    for r in range(repeats):
        names = list(timers) if r % 2 == 0 else list(reversed(timers))
        for name in names:
            out[name].append(timers[name].timeit(calls) / calls * 1e6)
    return out


def _time_cold(
    candidates: dict[str, tuple[Callable[[Any], Any], Callable[[], list[Any]]]],
    batch: int,
    repeats: int,
) -> dict[str, list[float]]:
    """µs per call on inputs never seen before: each (candidate, repeat) gets a fresh batch of
    ``batch`` inputs from its factory, made before the clock starts, each used once."""
    out: dict[str, list[float]] = {name: [] for name in candidates}
    for r in range(repeats):
        names = list(candidates) if r % 2 == 0 else list(reversed(candidates))
        for name in names:
            fn, make = candidates[name]
            inputs = make()
            timer = timeit.Timer("for x in p: f(x)", globals={"f": fn, "p": inputs})
            out[name].append(timer.timeit(1) / len(inputs) * 1e6)
    return out


def run(ctx: Context) -> None:
    from paywall.entitlements.verifier import (
        AUDIENCE,
        DEFAULT_LEEWAY,
        Verifier,
        check_claims,
        serializer,
    )

    plan = ctx.plan
    keys = [secrets.token_hex(32)]
    signer = serializer(keys)
    plain_signer = uncompressed_signer(keys)
    verifier = Verifier(keys)
    claims = premium_claims(keys)
    token = str(signer.dumps(claims))
    plain = str(plain_signer.dumps(claims))
    for t in (token, plain):
        if verifier.verify(t) != claims or signer.loads(t) != claims:
            raise RuntimeError("the verifier does not round-trip a service token")
    value, _, sig = token.encode().rpartition(b".")
    derived = signer.make_signer().derive_key()
    if not hmac.compare_digest(base64_decode(sig), hmac.digest(derived, value, "sha256")):
        raise RuntimeError("baseline HMAC does not reproduce the token's signature")
    compressed = value.startswith(b".")

    same = _time(
        {
            BASELINE: ("d(k, v, 'sha256')", {"d": hmac.digest, "k": derived, "v": value}),
            VERIFY: ("f(t)", {"f": verifier.verify, "t": token}),
            LOAD: ("f(t)", {"f": verifier.load, "t": token}),
            ITSDANGEROUS: ("f(t)", {"f": signer.loads, "t": token}),
        },
        plan.token_calls,
        plan.token_repeats,
    )

    batch = plan.token_pool

    def fresh(ser: Any = signer) -> Callable[[], list[str]]:
        return lambda: [str(ser.dumps(premium_claims(keys))) for _ in range(batch)]

    def fresh_values() -> list[bytes]:
        return [t.encode().rpartition(b".")[0] for t in fresh()()]

    def hmac_of(v: bytes) -> bytes:
        return hmac.digest(derived, v, "sha256")

    cold = _time_cold(
        {
            BASELINE: (hmac_of, fresh_values),
            VERIFY: (verifier.verify, fresh()),
            LOAD: (verifier.load, fresh()),
            ITSDANGEROUS: (signer.loads, fresh()),
            UNCOMPRESSED: (verifier.verify, fresh(plain_signer)),
        },
        batch,
        plan.token_repeats,
    )

    # Where a never-seen token's check goes: each step the verifier performs, timed alone.
    payload = value[1:] if compressed else value
    data = base64_decode(payload)
    raw_json = zlib.decompress(data) if compressed else data
    decoded = json.loads(raw_json.decode("utf-8"))
    steps: dict[str, tuple[str, dict[str, Any]]] = {
        "str→bytes, split at the last '.'": ("t.encode('utf-8').rpartition(b'.')", {"t": token}),
        "base64-decode the signature (itsdangerous)": ("b(s)", {"b": base64_decode, "s": sig}),
        "HMAC-SHA256 (= baseline)": (
            "d(k, v, 'sha256')",
            {"d": hmac.digest, "k": derived, "v": value},
        ),
        "compare_digest": ("c(a, a)", {"c": hmac.compare_digest, "a": base64_decode(sig)}),
        "base64-decode the payload (itsdangerous)": ("b(p)", {"b": base64_decode, "p": payload}),
    }
    if compressed:
        steps["zlib.decompress"] = ("z(d)", {"z": zlib.decompress, "d": data})
    steps["bytes→str + json.loads"] = ("j(r.decode('utf-8'))", {"j": json.loads, "r": raw_json})
    steps["check_claims (+ time.time())"] = (
        "c(x, now=tt(), leeway=l, audience=a)",
        {"c": check_claims, "x": decoded, "tt": time.time, "l": DEFAULT_LEEWAY, "a": AUDIENCE},
    )
    breakdown = _time(steps, plan.token_calls, max(3, plan.token_repeats // 2))
    _report(ctx, token, plain, compressed, same, cold, breakdown, batch)


def _ratio(data: dict[str, list[float]], name: str) -> Runs:
    return Runs.of(v / b for v, b in zip(data[name], data[BASELINE], strict=True))


def _report(
    ctx: Context,
    token: str,
    plain: str,
    compressed: bool,
    same: dict[str, list[float]],
    cold: dict[str, list[float]],
    breakdown: dict[str, list[float]],
    batch: int,
) -> None:
    ctx.results["tokens"] = {
        "repeated": same,
        "never_seen": cold,
        "breakdown": breakdown,
        "token_length": len(token),
        "compressed": compressed,
    }
    target = "≤ 3× raw HMAC"
    rows = []
    for label, data in (("repeated token", same), ("never-seen token", cold)):
        b = Runs.of(data[BASELINE])
        for name, short in ((VERIFY, "`Verifier.verify`"), (LOAD, "`Verifier.load`")):
            r = _ratio(data, name)
            rows.append(
                ctx.row(
                    f"1. Offline check, {label}: {short} µs/call",
                    Runs.of(data[name]).fmt(2, "µs"),
                    b.fmt(2, "µs") + " raw HMAC",
                    r.fmt(2, "×"),
                    target,
                    r.median <= 3.0,
                )
            )
    r_its = _ratio(cold, ITSDANGEROUS)
    rows.append(
        ctx.row(
            "1. Offline check: plain itsdangerous `loads` µs/call (no cache)",
            Runs.of(cold[ITSDANGEROUS]).fmt(2, "µs"),
            Runs.of(cold[BASELINE]).fmt(2, "µs") + " raw HMAC",
            r_its.fmt(2, "×"),
            "(reference, ~6–7×)",
            None,
        )
    )
    ctx.report.rows += rows
    sec = ctx.report.section(
        "tokens", "1. Offline token check (per article view)", ctx.command("tokens")
    )
    sec.add(
        f"One process, `timeit`, {ctx.plan.token_repeats} repeats per candidate, candidates"
        " interleaved within each repeat; ratio = candidate ÷ raw HMAC in the same repeat,"
        " median (min–max) over repeats.",
        f"The token is a premium reader's, with claims exactly as `EntitlementService.issue`"
        f" builds them: {len(token)} characters, "
        + (
            "zlib-compressed by itsdangerous (payload starts with `.`)"
            if compressed
            else "not compressed"
        )
        + f"; the same claims signed without compression take {len(plain)}.",
        "The baseline is `hmac.digest(derived_key, signed_bytes, 'sha256')` on the token's"
        " signed part with the key already derived: the one step no verifier can skip.",
        "",
        f"**Repeated token** ({ctx.plan.token_calls:,} calls per repeat on one token: a reader"
        " paging through articles while the token lives):",
        "",
    )
    sec.body += _table(same)
    sec.add(
        "",
        f"**Never-seen token** (per repeat and candidate, {batch:,} tokens signed just before"
        " the clock starts, each checked once: the first view after each refresh):",
        "",
    )
    sec.body += _table(cold)
    hm = Runs.of(breakdown["HMAC-SHA256 (= baseline)"]).median
    total = Runs.of(cold[VERIFY]).median
    rows_b = []
    summed = 0.0
    for name, vals in breakdown.items():
        m = Runs.of(vals).median
        summed += m
        rows_b.append([name, f"{m:.2f}", f"{m / hm:.2f}×", f"{m / total * 100:.0f}%"])
    rows_b.append(
        [
            "(sum of the steps)",
            f"{summed:.2f}",
            f"{summed / hm:.2f}×",
            f"{summed / total * 100:.0f}%",
        ]
    )
    rows_b.append(
        ["`Verifier.verify`, never-seen token", f"{total:.2f}", f"{total / hm:.2f}×", "100%"]
    )
    sec.add(
        "",
        "**Where a never-seen token's check goes** (each step the verifier performs, timed"
        " alone on the same token, median µs):",
        "",
    )
    sec.body += table(["Step", "µs", "× HMAC", "share of verify"], rows_b)
    ctx.notes_for("tokens", sec, _ratio(same, VERIFY), _ratio(cold, VERIFY))


def _table(data: dict[str, list[float]]) -> list[str]:
    rows = []
    for name, vals in data.items():
        r = _ratio(data, name)
        rows.append(
            [
                name,
                Runs.of(vals).fmt(2),
                "1.00× (baseline)"
                if name == BASELINE
                else f"{r.median:.2f}× ({num(r.lo, 2)}–{num(r.hi, 2)})",
            ]
        )
    return table(["Candidate", "µs per call, median (min–max)", "× raw HMAC"], rows)
