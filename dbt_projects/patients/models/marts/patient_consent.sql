with patients as (
    select * from {{ ref('stg_patients') }}
)

select
    patient_id,
    consent_research,
    consent_marketing,
    created_at as recorded_at
from patients
