-- one claim's version: its row in claim_versions, or, for a claim no correction touches,
-- its own header as the current version of its own chain
with claim_header as (
    select payer, claim_id, claim_frequency_code, paid_date
    from raw.latest_claim_lines
    where payer = $payer and claim_id = $claim_id
    order by claim_line_number
    limit 1
)
select
    coalesce(version.chain_root_id, header.claim_id) as chain_root_id,
    coalesce(version.is_current, true) as is_current,
    header.claim_frequency_code,
    header.paid_date
from claim_header as header
left join audit.claim_versions as version using (payer, claim_id)
