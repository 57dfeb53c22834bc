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
    cast({{ dbt.datediff('collected_at', 'resulted_at', 'minute') }} as double precision) / 60 as turnaround_hours
from tests
