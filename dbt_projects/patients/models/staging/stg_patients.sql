with source as (
    select * from {{ source('patients', 'raw_patients') }}
),

cleaned as (
    select
        patient_id,
        trim(first_name) as first_name,
        trim(last_name) as last_name,
        lower(trim(email)) as email,
        phone,
        date_of_birth,
        zip,
        upper(state) as state,
        consent_marketing,
        consent_research,
        created_at,
        {{ dbt.datediff("date_of_birth", "date '2024-06-30'", "year") }} as age_years
    from source
)

select
    *,
    case
        when age_years < 18 then '0-17'
        when age_years < 50 then '18-49'
        when age_years < 65 then '50-64'
        else '65+'
    end as age_band
from cleaned
