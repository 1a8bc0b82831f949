-- the views of the audit database: they hold no data, so they are made again on every
-- connect (after the migrations) and always say what this release means by them.

-- a line delivered again under the same key replaces the earlier copy (rules.md, "Scope")
create or replace view raw.latest_claim_lines as
select *
from raw.claim_lines
qualify row_number() over (
    partition by payer, claim_id, claim_line_number
    order by delivery_id desc, source_row desc
) = 1;

