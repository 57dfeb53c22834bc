with patients as (
    select * from {{ ref('stg_patients') }}
)

select
    patient_id,
    first_name,
    last_name,
    email,
    phone,
    date_of_birth,
    zip,
    state,
    age_band,
    created_at
from patients
