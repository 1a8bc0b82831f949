"""What the outputs say about a policy: its title, its bulletin and its rules' wording.

The one place outputs read them from: the packs the audit finds (pipelines/audit/packs.py).
A policy's rules are its own suite's and, when it asks for them, the general pack's. A policy
found in the log but no longer among the packs is shown by its ID, with no rule wording.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.audit.packs import GENERAL_PACK, discover
from pipelines.audit.rules import load_suite_definition


@dataclass(frozen=True)
class PolicyText:
    policy_id: str
    title: str
    bulletin: str  # the KMAP bulletin number; blank when not known

    @property
    def heading(self) -> str:
        """The policy as a heading names it: its title and its bulletin."""
        if not self.bulletin:
            return self.title
        return f"{self.title} (KMAP General Bulletin {self.bulletin})"


@dataclass(frozen=True)
class RuleText:
    rule_id: str
    title: str
    bulletin_text: str
    flagged_when: str


def policy_text(policy_id: str) -> PolicyText:
    pack = discover().get(policy_id)
    if pack is None:
        return PolicyText(policy_id, policy_id, "")
    return PolicyText(pack.id, pack.title, pack.bulletin or "")


def rule_texts(policy_id: str) -> list[RuleText]:
    """One entry per rule of the policy, in catalog order, from the suites' own metadata."""
    packs = discover()
    pack = packs.get(policy_id)
    if pack is None:
        return []
    suites = [pack.suite_file]
    if pack.general_rules:
        suites.append(packs[GENERAL_PACK].suite_file)
    seen: dict[str, RuleText] = {}
    for suite in suites:
        for expectation in load_suite_definition(suite)["expectations"]:
            meta = expectation["meta"]
            seen.setdefault(
                meta["rule_id"],
                RuleText(
                    meta["rule_id"], meta["title"], meta["bulletin_text"], meta["flagged_when"]
                ),
            )
    return list(seen.values())
