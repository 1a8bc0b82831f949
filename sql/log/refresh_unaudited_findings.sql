-- a nightly run that audited only some claims: the findings of every other claim were
-- produced again (their facts cannot have changed), so they are found on this date too
update audit.findings as findings
set last_found_date = $as_of
where findings.status in ('open', 'waived')
    and findings.last_found_date = $previous_as_of
    and not exists (
        select 1
        from audited_claims as claim
        where claim.payer = findings.payer and claim.claim_id = findings.claim_id
    )
