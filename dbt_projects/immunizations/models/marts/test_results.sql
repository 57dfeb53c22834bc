with tests as (
    select * from {{ ref('stg_test_results') }}
)

select
    test_id,
    patient_id,
    site_id,
    test_type,
    coalesce(result, 'pending') as result,
    collected_at,
    resulted_at,
    date_diff('minute', collected_at, resulted_at) / 60.0 as turnaround_hours
from tests
