"""The `mesh` command: one module per verb, registered by `app`; the top of the import graph, so
nothing else imports it.

Must not import: `devtools`, except `seed` and `emit`, which import the seeder and the appointment
feed inside their verb (development verbs of the demo mesh).
"""
