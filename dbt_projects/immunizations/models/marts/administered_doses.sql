with doses as (
    select * from {{ ref('stg_doses') }}
),

lots as (
    select lot_id, manufacturer from {{ source('pharmacy', 'vaccine_stock') }}
)

select
    doses.dose_id,
    doses.patient_id,
    doses.site_id,
    doses.lot_id,
    doses.vaccine_code,
    lots.manufacturer,
    doses.dose_number,
    doses.administered_at
from doses
left join lots on doses.lot_id = lots.lot_id
