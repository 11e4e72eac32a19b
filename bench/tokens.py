"""Benchmark 1: the offline token check, in one process.

``Verifier.verify`` (signature, claims, session binding) on Ed25519-signed JWTs, in two cases:

- **never-seen token**: every call a token the process has never seen (fresh tokens are signed
  before each timed batch), as on the first view after each refresh; no cache can help. Baseline:
  the raw Ed25519 verify (``cryptography``'s ``Ed25519PublicKey.verify``) of the same signing
  input, the one step no verifier can skip; target ≤ 1.5×. PyJWT's ``jwt.decode`` of the same
  token is shown for reference.
- **repeated token**: the same token on every call, as a frontend sees a reader's token on every
  article view for the token's life. Baseline: a raw HMAC-SHA256 of the same bytes (what a
  shared-key token would cost at least); target ≤ 3× (the verifier's cache of verified tokens).

Every repeat times all candidates round-robin, so a noisy neighbour slows them alike; the ratio
is taken per repeat, then the median over repeats.
"""

from __future__ import annotations

import hmac
import secrets
import time
import timeit
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bench.report import table
from bench.stats import Runs, num

if TYPE_CHECKING:
    from bench.runner import Context

ED25519 = "raw Ed25519 verify (cryptography, same bytes)"
HMAC = "raw HMAC-SHA256 (hmac.digest, same bytes)"
VERIFY = "Verifier.verify (signature + claims + session)"
PYJWT = "PyJWT jwt.decode (EdDSA, aud; no session check)"
SESSION = "bench-session-" + "s" * 32


def premium_claims() -> dict[str, Any]:
    """Claims exactly as ``EntitlementService.issue`` builds them, for a premium reader."""
    from paywall.entitlements.verifier import AUDIENCE, session_hash

    now = int(time.time())
    return {
        "iss": "http://127.0.0.1:8000",
        "sub": secrets.token_hex(16),
        "aud": AUDIENCE,
        "sid": secrets.token_hex(16),
        "plan": "premium_monthly",
        "features": ["premium_content", "notifications"],
        "max_devices": 5,
        "iat": now,
        "exp": now + 300,
        "jti": secrets.token_urlsafe(16),
        "cnf": {"sth": session_hash(SESSION)},
    }


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
    import jwt

    from paywall.entitlements.keys import generate_pem, signing_keys
    from paywall.entitlements.verifier import AUDIENCE, Verifier, _b64decode

    plan = ctx.plan
    keys = signing_keys([generate_pem()])
    public = keys.keys[0].private.public_key()
    verifier = Verifier(keys.jwks())
    claims = premium_claims()
    token = keys.sign(claims)
    if verifier.verify(token, session=SESSION) != claims:
        raise RuntimeError("the verifier does not round-trip a service token")
    signed, _, sig = token.encode().rpartition(b".")
    sig_bytes = _b64decode(sig)
    public.verify(sig_bytes, signed)  # the baseline reproduces the token's signature
    hmac_key = secrets.token_bytes(32)
    verify = verifier.verify

    def pyjwt(t: str) -> Any:
        return jwt.decode(t, public, algorithms=["EdDSA"], audience=AUDIENCE)

    same = _time(
        {
            HMAC: ("d(k, v, 'sha256')", {"d": hmac.digest, "k": hmac_key, "v": token.encode()}),
            VERIFY: ("f(t, session=s)", {"f": verify, "t": token, "s": SESSION}),
        },
        plan.token_calls,
        plan.token_repeats,
    )

    batch = plan.token_pool

    def fresh() -> list[str]:
        return [keys.sign(premium_claims()) for _ in range(batch)]

    def fresh_signed() -> list[tuple[bytes, bytes]]:
        out = []
        for t in fresh():
            s, _, g = t.encode().rpartition(b".")
            out.append((_b64decode(g), s))
        return out

    def raw_ed25519(pair: tuple[bytes, bytes]) -> None:
        public.verify(pair[0], pair[1])

    def checked(t: str) -> Any:
        return verify(t, session=SESSION)

    cold = _time_cold(
        {
            ED25519: (raw_ed25519, fresh_signed),
            VERIFY: (checked, fresh),
            PYJWT: (pyjwt, fresh),
        },
        batch,
        plan.token_repeats,
    )
    _report(ctx, token, same, cold, batch)


def _ratio(data: dict[str, list[float]], name: str, base: str) -> Runs:
    return Runs.of(v / b for v, b in zip(data[name], data[base], strict=True))


def _report(
    ctx: Context,
    token: str,
    same: dict[str, list[float]],
    cold: dict[str, list[float]],
    batch: int,
) -> None:
    ctx.results["tokens"] = {
        "repeated": same,
        "never_seen": cold,
        "token_length": len(token),
    }
    warm = _ratio(same, VERIFY, HMAC)
    cold_r = _ratio(cold, VERIFY, ED25519)
    ref = _ratio(cold, PYJWT, ED25519)
    rows = [
        ctx.row(
            "1. Offline check, never-seen token: `Verifier.verify` µs/call",
            Runs.of(cold[VERIFY]).fmt(2, "µs"),
            Runs.of(cold[ED25519]).fmt(2, "µs") + " raw Ed25519",
            cold_r.fmt(2, "×"),
            "≤ 1.5× raw Ed25519",
            cold_r.median <= 1.5,
        ),
        ctx.row(
            "1. Offline check, repeated token: `Verifier.verify` µs/call",
            Runs.of(same[VERIFY]).fmt(2, "µs"),
            Runs.of(same[HMAC]).fmt(2, "µs") + " raw HMAC",
            warm.fmt(2, "×"),
            "≤ 3× raw HMAC",
            warm.median <= 3.0,
        ),
        ctx.row(
            "1. Offline check: PyJWT `jwt.decode` µs/call (no cache)",
            Runs.of(cold[PYJWT]).fmt(2, "µs"),
            Runs.of(cold[ED25519]).fmt(2, "µs") + " raw Ed25519",
            ref.fmt(2, "×"),
            "(reference)",
            None,
        ),
    ]
    ctx.report.rows += rows
    sec = ctx.report.section(
        "tokens", "1. Offline token check (per article view)", ctx.command("tokens")
    )
    sec.add(
        f"One process, `timeit`, {ctx.plan.token_repeats} repeats per candidate, candidates"
        " interleaved within each repeat; ratio = candidate ÷ baseline in the same repeat,"
        " median (min–max) over repeats.",
        f"The token is a premium reader's Ed25519 JWT with claims exactly as"
        f" `EntitlementService.issue` builds them: {len(token)} characters. `Verifier.verify`"
        " checks the signature, `aud`, `exp`/`iat` and the session binding (`cnf.sth`).",
        "",
        f"**Never-seen token** (per repeat and candidate, {batch:,} tokens signed just before"
        " the clock starts, each checked once: the first view after each refresh); baseline"
        " `Ed25519PublicKey.verify(signature, signing_input)`:",
        "",
    )
    sec.body += _table(cold, ED25519)
    sec.add(
        "",
        f"**Repeated token** ({ctx.plan.token_calls:,} calls per repeat on one token: a reader"
        " paging through articles while the token lives); baseline `hmac.digest(key, token,"
        " 'sha256')`:",
        "",
    )
    sec.body += _table(same, HMAC)
    sec.add(
        "",
        f"**Never-seen: {'target met' if cold_r.median <= 1.5 else 'target missed'}**"
        f" ({cold_r.median:.2f}× the raw Ed25519 verify). **Repeated:"
        f" {'target met' if warm.median <= 3 else 'target missed'}** ({warm.median:.2f}× the"
        " raw HMAC).",
    )


def _table(data: dict[str, list[float]], base: str) -> list[str]:
    rows = []
    for name, vals in data.items():
        r = _ratio(data, name, base)
        rows.append(
            [
                name,
                Runs.of(vals).fmt(2),
                "1.00× (baseline)"
                if name == base
                else f"{r.median:.2f}× ({num(r.lo, 2)}–{num(r.hi, 2)})",
            ]
        )
    return table(["Candidate", "µs per call, median (min–max)", "× baseline"], rows)
