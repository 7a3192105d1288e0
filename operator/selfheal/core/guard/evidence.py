"""Whose evidence may switch a patch off, and for whom (pure logic).

Outcome reports come from developers' tokens. A patch is switched off for everyone only on
evidence that does not rest on any single developer; otherwise it is switched off for the
developers whose own reports convict it, and stays on for the others:

- its only user: a patch used by one developer (in the evidence window and the 24 hours before)
  is switched off for everyone on that developer's evidence, so a single-application fleet
  stays protected;
- two or more convicted: the reports of each of two developers convict the patch on their own
  (a developer switched off earlier for this patch counts as convicted);
- leave one out: the rule still holds on the reports of all developers but any one, for each of
  them (many small users, none of whom has enough samples alone, still switch a bad patch off).

None of these can be met by one developer against others who use the patch healthily: their
reports without his do not convict it, and his alone make one conviction. Rows written into
`sdk_patch_applications` in SQL count under their own `developer_id`, like any other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from selfheal.core.guard.evaluate import Counts, RuleOutcome
from selfheal.core.guard.regression import RegressionOutcome
from selfheal.core.guard.rules import GuardSettings
from selfheal.core.guard.stats import wilson_lower_bound, z_score

# The Regression rule judges a CUSUM over the current rise, which has no window of its own:
# a developer's reports over the last ten minutes are its evidence.
REGRESSION_EVIDENCE_SECONDS = 600
# How far back a user of the patch counts as one (the "only user" exception).
USERS_LOOKBACK_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Scope:
    everyone: bool
    developers: tuple[str, ...]  # switched off now for these alone (empty when everyone)
    convicted: tuple[str, ...]  # developers whose own reports convict the patch, earlier switch-offs included
    users: int  # developers with reports in the evidence window
    why: str

    def details(self) -> dict[str, object]:
        return {
            "scope": "everyone" if self.everyone else "developers",
            "developers": list(self.developers),
            "convicted": list(self.convicted),
            "users": self.users,
            "why": self.why,
        }


def evidence_seconds(cause: RuleOutcome) -> int:
    """The window whose reports, per developer, are the evidence for `cause`."""
    return REGRESSION_EVIDENCE_SECONDS if isinstance(cause, RegressionOutcome) else cause.window_seconds


def convicts(cause: RuleOutcome, settings: GuardSettings, counts: Counts) -> bool:
    """Whether `counts` alone prove what `cause` proved: the same rule, window and test."""
    rule = cause.rule
    z = z_score(confidence=settings.early_confidence)
    if isinstance(cause, RegressionOutcome):
        # Failures above the patch's own baseline beyond reasonable doubt.
        plan = cause.design
        return (
            plan is not None
            and counts.total >= max(settings.min_samples, 1)
            and wilson_lower_bound(events=counts.failures, total=counts.total, z=z) > plan.p0
        )
    if rule.metric == "volume":
        return counts.total * 60.0 / max(cause.window_seconds, 1) > rule.threshold
    events = counts.events(rule.metric)
    if cause.early:
        return (
            counts.total >= max(settings.early_min_samples, settings.min_samples)
            and wilson_lower_bound(events=events, total=counts.total, z=z) > rule.threshold
        )
    return counts.total >= max(settings.min_samples, 1) and events / counts.total > rule.threshold


def _without(total: Counts, part: Counts) -> Counts:
    return Counts(total.total - part.total, total.failures - part.failures, total.rollbacks - part.rollbacks)


def scope(
    cause: RuleOutcome,
    settings: GuardSettings,
    by_developer: Mapping[str, Counts],
    *,
    switched_off: frozenset[str] = frozenset(),
    other_users: bool = False,
) -> Scope:
    """For whom a patch whose rule fired (`cause`) is switched off, from each developer's counts in
    the evidence window. `switched_off`: developers it is already off for; `other_users`: whether
    developers beyond `by_developer` used it within USERS_LOOKBACK_SECONDS."""
    own = {developer for developer, counts in by_developer.items() if convicts(cause, settings, counts)}
    convicted = tuple(sorted(own | switched_off))
    users = len(by_developer)

    def decided(everyone: bool, why: str) -> Scope:
        developers = () if everyone else tuple(sorted(own - switched_off))
        return Scope(everyone=everyone, developers=developers, convicted=convicted, users=users, why=why)

    if users == 1 and not other_users and not (switched_off - by_developer.keys()):
        return decided(True, "its only user's reports")
    if len(convicted) >= 2:
        return decided(True, f"the reports of {len(convicted)} developers, each on their own")
    total = Counts(
        sum(c.total for c in by_developer.values()),
        sum(c.failures for c in by_developer.values()),
        sum(c.rollbacks for c in by_developer.values()),
    )
    if users >= 2 and all(convicts(cause, settings, _without(total, c)) for c in by_developer.values()):
        return decided(True, f"the reports of {users} developers, without any single one's")
    if own - switched_off:
        return decided(False, "one developer's reports: switched off for that developer only")
    return decided(False, "no developer's reports convict it on their own: nothing switched off")
