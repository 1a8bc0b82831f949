-- the partitions of tonight's in-scope lines (temp table in_scope_line): whole units that no
-- rule crosses, each a $period ('day' or 'month') of the DOS, split by member into
-- $member_buckets buckets (1: not split), packed in order into partitions of about
-- $lines_per_partition lines. A unit larger than that is a partition of its own.

create or replace temp table audit_unit as
with unit_of_line as (
    select
        date_trunc($period, service_date) as unit_period,
        hash(member_id) % $member_buckets as member_bucket
    from in_scope_line
),
unit as (
    select unit_period, member_bucket, count(*) as lines
    from unit_of_line
    group by all
),
unit_in_order as (
    select
        *,
        coalesce(sum(lines) over (
            order by unit_period, member_bucket
            rows between unbounded preceding and 1 preceding
        ), 0) as lines_before
    from unit
)
select
    unit_period,
    member_bucket,
    lines,
    dense_rank() over (order by lines_before // $lines_per_partition) as partition_number
from unit_in_order;
