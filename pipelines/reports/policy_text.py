"""What the outputs say about a policy: its title, its bulletin and its rules' wording.

The one place outputs read them from, so that where they come from can change in one spot:
today the only policy is the one config.load_policy() describes, with the default suite.
A policy found in the log but not described here is shown by its ID, with no rule wording.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.audit.rules import load_suite_definition
from pipelines.config import load_policy


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
    policy = load_policy()
    if policy.policy_id == policy_id:
        return PolicyText(policy.policy_id, policy.title, policy.bulletin)
    return PolicyText(policy_id, policy_id, "")


def rule_texts(policy_id: str) -> list[RuleText]:
    """One entry per rule of the policy, in catalog order, from its suite's own metadata."""
    if load_policy().policy_id != policy_id:
        return []
    seen: dict[str, RuleText] = {}
    for expectation in load_suite_definition()["expectations"]:
        meta = expectation["meta"]
        seen.setdefault(
            meta["rule_id"],
            RuleText(meta["rule_id"], meta["title"], meta["bulletin_text"], meta["flagged_when"]),
        )
    return list(seen.values())
