-- the claims tonight's deliveries touched: claims delivered since the last audit, the claims
-- their corrections name (in any copy), and every claim of their chains.

create or replace temp table touched_claim as
with delivered_claim as (
    select distinct payer, claim_id
    from raw.claim_lines
    where delivery_id > $last_delivery_id
),
named_claim as (
    select distinct line.payer, line.original_claim_id as claim_id
    from raw.claim_lines as line
    semi join delivered_claim using (payer, claim_id)
    where line.claim_frequency_code in ('7', '8') and line.original_claim_id is not null
),
touched_chain as (
    select distinct claim.payer, coalesce(version.chain_root_id, claim.claim_id) as chain_root_id
    from (select * from delivered_claim union select * from named_claim) as claim
    left join audit.claim_versions as version using (payer, claim_id)
)
select payer, claim_id from delivered_claim
union
select payer, claim_id from named_claim
union
select version.payer, version.claim_id
from audit.claim_versions as version
semi join touched_chain using (payer, chain_root_id)
union
select payer, chain_root_id from touched_chain;
