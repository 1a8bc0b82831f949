-- findings follow their chain when its root changes, before tonight's findings are folded in.
-- a chain's root can change after its findings were logged: a correction can arrive before
-- the correction it names (C replaces B while B is not yet delivered: the root is B; when B
-- arrives replacing A, the root is A), or a claim can be delivered again naming another
-- original, or none. update_findings.sql matches a replaced line's finding to its successor,
-- and a new finding to the superseded one it inherits first_found_date from, by chain root: a
-- stale root would close a replaced line as resolved_reprocessed and reset the problem's age.
-- every finding, whatever its status, takes its claim's root from audit.claim_versions (a
-- claim outside it has no correction and is its own root), so a root left stale by any
-- earlier run is corrected too. Only findings whose root moved are written, and only the
-- policy $policy_id's: each policy's run follows its own findings.

update audit.findings as findings
set chain_root_id = moved.chain_root_id
from (
    select logged.payer, logged.claim_id, logged.claim_line_number, logged.rule_id,
        coalesce(version.chain_root_id, logged.claim_id) as chain_root_id
    from audit.findings as logged
    left join audit.claim_versions as version using (payer, claim_id)
    where logged.policy_id = $policy_id
        and logged.chain_root_id <> coalesce(version.chain_root_id, logged.claim_id)
) as moved
where findings.policy_id = $policy_id
    and findings.payer = moved.payer and findings.claim_id = moved.claim_id
    and findings.claim_line_number = moved.claim_line_number
    and findings.rule_id = moved.rule_id
