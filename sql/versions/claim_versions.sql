-- rebuild the current version of every corrected claim chain (rules.md, "Scope").
-- a chain is a root claim and every replacement (7) or void (8) that names it, directly or
-- through another correction; the newest correction (paid date, then delivery order) decides.
-- only claims of chains with a correction are kept: any other claim is its own chain root and
-- current. Those are nearly all claims, and never reading their lines keeps this step small.
-- with $every_claim false, only the chains of the claims in temp table touched_claim
-- (touched_claims.sql) are rebuilt: no other chain can have changed.

delete from audit.claim_versions
where $every_claim;

delete from audit.claim_versions as version
using touched_claim as claim
where version.payer = claim.payer and version.claim_id = claim.claim_id;

insert into audit.claim_versions
with recursive chain_claim as (
    -- claims with a line marked as a correction, and the claims such lines name
    select distinct payer, claim_id
    from raw.claim_lines
    where $every_claim and claim_frequency_code in ('7', '8')
    union
    select distinct payer, original_claim_id
    from raw.claim_lines
    where $every_claim
        and claim_frequency_code in ('7', '8')
        and original_claim_id is not null
    union
    select payer, claim_id from touched_claim
),
latest_chain_line as (
    -- a line delivered again under the same key replaces the earlier copy
    select line.payer, line.claim_id, line.claim_line_number, line.claim_frequency_code,
        line.original_claim_id, line.paid_date, line.delivery_id
    from raw.claim_lines as line
    semi join chain_claim using (payer, claim_id)
    qualify row_number() over (
        partition by line.payer, line.claim_id, line.claim_line_number
        order by line.delivery_id desc, line.source_row desc
    ) = 1
),
claim_header as (
    -- claim-level values are read from the claim's lowest line number
    select payer, claim_id, claim_frequency_code, original_claim_id, paid_date, delivery_id
    from latest_chain_line
    qualify row_number() over (partition by payer, claim_id order by claim_line_number) = 1
),
correction as (
    select * from claim_header
    where claim_frequency_code in ('7', '8') and original_claim_id is not null
),
chain_step as (
    -- walk up from each correction through the corrections it names; originals are roots
    select payer, claim_id, original_claim_id as ancestor_id, 1 as depth
    from correction
    union all
    select step.payer, step.claim_id, header.original_claim_id, step.depth + 1
    from chain_step as step
    join correction as header
        on header.payer = step.payer and header.claim_id = step.ancestor_id
    where step.depth < 100  -- a cycle of corrections cannot recurse forever
),
chain_root as (
    -- only corrections have a root other than themselves
    select payer, claim_id, arg_max(ancestor_id, depth) as chain_root_id
    from chain_step
    group by payer, claim_id
),
newest_correction as (
    select root.payer, root.chain_root_id, arg_max(
        header.claim_id, (header.paid_date, header.delivery_id, header.claim_id)
    ) as deciding_claim_id
    from chain_root as root
    join correction as header using (payer, claim_id)
    group by root.payer, root.chain_root_id
),
claim_in_chain as (
    select header.*, coalesce(root.chain_root_id, header.claim_id) as chain_root_id
    from claim_header as header
    left join chain_root as root using (payer, claim_id)
)
select
    claim.payer,
    claim.claim_id,
    claim.chain_root_id,
    claim.claim_frequency_code,
    claim.paid_date,
    claim.claim_id = correction.deciding_claim_id
        and claim.claim_frequency_code = '7' as is_current
from claim_in_chain as claim
join newest_correction as correction
    on correction.payer = claim.payer and correction.chain_root_id = claim.chain_root_id;
