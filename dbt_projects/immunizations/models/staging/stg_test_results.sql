with source as (
    select * from {{ source('immunizations', 'raw_test_results') }}
)

select
    test_id,
    patient_id,
    site_id,
    lower(test_type) as test_type,
    lower(result) as result,
    collected_at,
    resulted_at
from source
