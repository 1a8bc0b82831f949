-- tonight's in-scope lines (temp table in_scope_line), partition after partition
-- (audit_unit, from audit_partitions.sql): read as a stream, one partition at a time.
select line.*, unit.partition_number
from in_scope_line as line
join audit_unit as unit
    on unit.unit_period = date_trunc($period, line.service_date)
    and unit.member_bucket = hash(line.member_id) % $member_buckets
order by unit.partition_number
