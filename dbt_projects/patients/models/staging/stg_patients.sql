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
        -- age in full years (a birthday after the as-of date has not happened yet); datediff would
        -- count calendar years, making a 17-year-old born on 1 July 2006 an adult
        cast(date_part('year', age(date '2024-06-30', date_of_birth)) as integer) as age_years
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
