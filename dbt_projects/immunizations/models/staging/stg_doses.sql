with source as (
    select * from {{ source('immunizations', 'raw_doses') }}
)

select
    dose_id,
    patient_id,
    site_id,
    lot_id,
    vaccine_code,
    dose_number,
    administered_at
from source
