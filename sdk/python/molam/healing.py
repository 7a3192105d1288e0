"""The self-healing loop: ask the registry, verify, apply, retry, roll back, tell, report.

One failing call gets at most one patch. The patch changes the client's state in memory (the
whole document or nothing); if the retried call still fails, the rollback document is applied
at once (or, without one, the state from before the patch comes back). Every step that could
let an unverified or malformed patch through fails closed: the caller then gets the original
error, exactly as from an SDK without self-healing.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from molam.envelope import ReplayGuard, TrustedKeys, VerifiedPatch, check_unexpired, open_envelope
from molam.errors import MolamError, PatchRefused
from molam.matching import best_match
from molam.operations import ApplyContext, apply_document
from molam.registry import RegistryClient, RegistryUnavailable
from molam.reports import ReportQueue
from molam.state import StateCell

log = logging.getLogger("molam")

T = TypeVar("T")
SDK = "python"
LOOKUP_TIMEOUT_CAP = 5.0  # seconds; the caller's own timeout when smaller
MAX_CACHED_ERRORS = 256
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


@dataclass(frozen=True)
class AppliedPatch:
    """What `on_patch_applied` receives and `get_patch_history()` lists."""

    id: str
    version: str
    description: str
    severity: str
    error_signature: str
    error: str  # the error it answered
    success: bool  # the retried call succeeded
    rollback_triggered: bool
    applied_at: datetime


class Healer:
    """`registry` None: no registry configured, only the bootstrap patches (and no reports)."""

    def __init__(
        self,
        *,
        registry: RegistryClient | None,
        trusted: TrustedKeys,
        reports: ReportQueue | None,
        on_patch_applied: Callable[[AppliedPatch], object] | None,
        clock: Callable[[], float],
        replay: ReplayGuard | None = None,
        bootstrap: tuple[VerifiedPatch, ...] = (),
        history_size: int = 1000,
    ) -> None:
        self._registry, self._trusted, self._reports = registry, trusted, reports
        self._on_patch_applied, self._clock = on_patch_applied, clock
        self._replay = replay or ReplayGuard()
        # Last verified patch per error, for when the registry is unreachable.
        self._last_verified: dict[tuple[int | None, str | None], VerifiedPatch] = {}
        # The bootstrap file's patches: they stand in while the registry cannot be asked.
        self._bootstrap: dict[str, VerifiedPatch] = {patch.id: patch for patch in bootstrap}
        self._history: deque[AppliedPatch] = deque(maxlen=history_size)

    def history(self) -> list[AppliedPatch]:
        return list(self._history)

    @property
    def bootstrap_patches(self) -> list[VerifiedPatch]:
        return list(self._bootstrap.values())

    def heal(
        self,
        error: MolamError,
        *,
        context: dict[str, Any],
        cell: StateCell,
        retry: Callable[[Mapping[str, Any]], T],
        apply_context: ApplyContext,
    ) -> T:
        """The retried call's result once a patch healed it; otherwise raises (original error if no patch).
        `retry` gets the request fields the patch fills, for that call only."""
        patch = self._patch_for(error, context, timeout=min(cell.get().timeout, LOOKUP_TIMEOUT_CAP))
        if patch is None:
            raise error
        before = cell.get()
        try:
            applied = apply_document(patch.operations, before, apply_context)
        except PatchRefused as refusal:
            log.warning("Molam SDK refused self-healing patch %s v%s: %s", patch.id, patch.version, refusal)
            self._report(patch, error, context, success=False, patch_applied=False, reason=str(refusal))
            raise error  # noqa: B904  the caller gets its own error back, as if no patch existed
        cell.set(applied.state)
        for level, message in applied.logs:
            log.log(_LEVELS[level], message)
        log.warning(
            "⚡ Molam SDK applied self-healing patch %s v%s (%s) for %s",
            patch.id,
            patch.version,
            patch.description,
            error.error_text,
        )
        try:
            result = retry(applied.fill)
        except MolamError:
            self._roll_back(patch, cell, before, apply_context)
            self._record(patch, error, context, success=False, rollback=True)
            raise
        self._record(patch, error, context, success=True, rollback=False)
        return result

    def _patch_for(self, error: MolamError, context: dict[str, Any], *, timeout: float) -> VerifiedPatch | None:
        key = (error.status, error.code)
        if self._registry is None:
            return self._from_bootstrap(error)
        body: dict[str, Any] = {"sdk": SDK, "error": error.error_text[:2000], "context": context}
        if error.status is not None:
            body["status"] = error.status
        if error.code:
            body["code"] = error.code[:200]
        try:
            served = self._registry.lookup(body, timeout=timeout)
        except RegistryUnavailable as why:
            cached = self._last_verified_for(key)
            if cached is not None:
                log.warning(
                    "Molam SDK: self-heal registry unreachable (%s); using last verified patch %s", why, cached.id
                )
                return cached
            cached = self._from_bootstrap(error)
            log.warning(
                "Molam SDK: self-heal registry unreachable (%s); %s",
                why,
                f"using bootstrap patch {cached.id}" if cached else "no patch for this error",
            )
            if cached is None:  # the registry never saw this miss: report it for the coverage query
                self._report(None, error, context, success=False, patch_applied=False, reason="registry unreachable")
            return cached
        except PatchRefused as why:
            log.warning("Molam SDK: no self-healing patch: %s", why)
            return None
        if served is None:
            self._forget(key, error)
            return None
        try:
            patch = open_envelope(
                served.envelope,
                trusted=self._trusted,
                replay=self._replay,
                now=datetime.fromtimestamp(self._clock(), UTC),
            )
        except PatchRefused as why:
            log.warning("Molam SDK refused a self-healing envelope: %s", why)
            self._report(None, error, context, success=False, patch_applied=False, reason=str(why))
            return None
        patch = replace(patch, receipt=served.receipt)
        if key in self._last_verified or len(self._last_verified) < MAX_CACHED_ERRORS:
            self._last_verified[key] = patch
        return patch

    def _last_verified_for(self, key: tuple[int | None, str | None]) -> VerifiedPatch | None:
        """The patch last served for this error, while its envelope lasts: past `expires_at` the
        registry may have switched it off long ago, so blocking the registry must not keep it alive."""
        cached = self._last_verified.get(key)
        if cached is None:
            return None
        try:
            check_unexpired(cached, now=datetime.fromtimestamp(self._clock(), UTC))
        except PatchRefused as why:
            log.warning("Molam SDK: last verified patch dropped: %s", why)
            self._last_verified.pop(key, None)
            return None
        return cached

    def _forget(self, key: tuple[int | None, str | None], error: MolamError) -> None:
        """The registry answered that no patch applies to this error (switched off, or gone): the
        patch it last served for it stops everywhere, and so does every file patch matching it."""
        cached = self._last_verified.pop(key, None)
        if cached is not None:
            self._last_verified = {k: p for k, p in self._last_verified.items() if p.id != cached.id}
            self._bootstrap.pop(cached.id, None)
            log.warning("Molam SDK: the registry has no patch for %s: patch %s dropped", error.error_text, cached.id)
        # The registry, when it answers, wins over the file: a less specific file patch must not
        # take the place of the one dropped.
        while (stale := self._from_bootstrap(error, quiet=True)) is not None:
            log.warning(
                "Molam SDK: the registry has no patch for %s: bootstrap patch %s dropped", error.error_text, stale.id
            )
            self._bootstrap.pop(stale.id, None)

    def _from_bootstrap(self, error: MolamError, *, quiet: bool = False) -> VerifiedPatch | None:
        """The bootstrap patch for this error, by the registry's matching rules; expired ones are dropped."""
        now = datetime.fromtimestamp(self._clock(), UTC)
        for patch in [patch for patch in self._bootstrap.values() if patch.expires_at <= now]:
            log.warning("Molam SDK: bootstrap patch %s expired at %s: dropped", patch.id, patch.expires_at.isoformat())
            self._bootstrap.pop(patch.id, None)
        found = best_match(
            self._bootstrap.values(),
            message=error.error_text[:2000],
            status=error.status,
            code=error.code[:200] if error.code else None,
        )
        if found is None:
            if not quiet and self._registry is None:
                log.warning("Molam SDK: no bootstrap patch for %s", error.error_text)
            return None
        return found[0]

    def _roll_back(self, patch: VerifiedPatch, cell: StateCell, before, apply_context: ApplyContext) -> None:
        if patch.rollback_operations is None:
            cell.set(before)
        else:
            try:
                cell.set(apply_document(patch.rollback_operations, cell.get(), apply_context).state)
            except PatchRefused as refusal:
                # A rollback that cannot apply must still undo the patch.
                log.error("Molam SDK: rollback of %s refused (%s); restoring the previous settings", patch.id, refusal)
                cell.set(before)
        log.warning("Molam SDK rolled back self-healing patch %s v%s: the retried call failed", patch.id, patch.version)

    def _record(
        self, patch: VerifiedPatch, error: MolamError, context: dict[str, Any], *, success: bool, rollback: bool
    ) -> None:
        applied = AppliedPatch(
            id=patch.id,
            version=patch.version,
            description=patch.description,
            severity=patch.severity,
            error_signature=patch.error_signature,
            error=error.error_text,
            success=success,
            rollback_triggered=rollback,
            applied_at=datetime.now(UTC),
        )
        self._history.append(applied)
        self._report(patch, error, context, success=success, rollback=rollback)
        if self._on_patch_applied is not None:
            try:
                self._on_patch_applied(applied)
            except Exception:  # the caller's callback must not turn a healed call into a failure
                log.exception("Molam SDK: on_patch_applied raised")

    def _report(
        self,
        patch: VerifiedPatch | None,
        error: MolamError,
        context: dict[str, Any],
        *,
        success: bool,
        rollback: bool = False,
        patch_applied: bool = True,
        reason: str | None = None,
    ) -> None:
        if self._reports is None:  # no registry to report to
            return
        if patch is not None and patch.receipt is None:
            # A bootstrap patch was not served by the registry: it would refuse the report.
            log.debug("Molam SDK: outcome of %s not reported (no registry receipt)", patch.id)
            return
        report = {
            "patch_id": patch.id if patch else None,
            "sdk": SDK,
            "error": error.error_text[:2000],
            "success": success,
            "rollback_triggered": rollback,
            "patch_applied": patch_applied,
            "context": {**context, "reason": reason[:300]} if reason else context,
            "applied_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
        if patch is not None:
            report["receipt"] = patch.receipt
        self._reports.offer(report)
