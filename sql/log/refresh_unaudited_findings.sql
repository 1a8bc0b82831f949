-- a nightly run that audited only some claims: the findings of every other claim of the
-- policy $policy_id were produced again (their facts cannot have changed), so they are found
-- on this date too. Another policy's findings are its own runs' business.
update audit.findings as findings
set last_found_date = $as_of
where findings.policy_id = $policy_id
    and findings.status in ('open', 'waived')
    and findings.last_found_date = $previous_as_of
    and not exists (
        select 1
        from audited_claims as claim
        where claim.payer = findings.payer and claim.claim_id = findings.claim_id
    )
