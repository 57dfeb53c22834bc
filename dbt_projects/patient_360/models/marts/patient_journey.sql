with accounts as (
    select * from {{ source('patients', 'patient_accounts') }}
),

appointments as (
    select
        patient_id,
        count(*) as appointments_booked,
        count(*) filter (where status = 'completed') as appointments_completed,
        count(*) filter (where status = 'no_show') as no_shows,
        count(*) filter (where status in ('booked', 'rescheduled')) as open_appointments
    from {{ source('scheduling', 'appointments') }}
    group by patient_id
),

doses as (
    select
        patient_id,
        count(*) as doses_received,
        max(administered_at) as last_dose_at
    from {{ source('immunizations', 'administered_doses') }}
    group by patient_id
),

tests as (
    select
        patient_id,
        count(*) as tests_taken,
        {{ last_by('result', 'collected_at') }} as last_test_result
    from {{ source('immunizations', 'test_results') }}
    group by patient_id
),

joined as (
    select
        accounts.patient_id,
        accounts.email,
        cast(extract(year from accounts.date_of_birth) as integer) as birth_year,
        accounts.state,
        accounts.age_band,
        coalesce(appointments.appointments_booked, 0) as appointments_booked,
        coalesce(appointments.appointments_completed, 0) as appointments_completed,
        coalesce(appointments.no_shows, 0) as no_shows,
        coalesce(appointments.open_appointments, 0) as open_appointments,
        coalesce(doses.doses_received, 0) as doses_received,
        doses.last_dose_at,
        coalesce(tests.tests_taken, 0) as tests_taken,
        tests.last_test_result
    from accounts
    left join appointments on accounts.patient_id = appointments.patient_id
    left join doses on accounts.patient_id = doses.patient_id
    left join tests on accounts.patient_id = tests.patient_id
)

select
    patient_id,
    email,
    birth_year,
    state,
    age_band,
    appointments_booked,
    appointments_completed,
    no_shows,
    doses_received,
    last_dose_at,
    doses_received >= 2 as fully_vaccinated,
    tests_taken,
    last_test_result,
    case
        when doses_received >= 2 then 'fully_vaccinated'
        when doses_received = 1 then 'partly_vaccinated'
        when open_appointments > 0 then 'booked'
        when tests_taken > 0 then 'tested'
        else 'new'
    end as journey_stage
from joined
