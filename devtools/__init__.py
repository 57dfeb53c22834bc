"""Development tools around the mesh, not part of what runs in production: the seeder of the demo
sources (`seed`, `mesh seed`), a live feed of appointment events (`appointment_feed`, `mesh emit`),
the Dagster UI driven from code (`ui_screenshot`, `make screenshot`, the UI tests) and the README's
generated parts (`readme`, `make docs`).

Production code (`mesh_platform`) never imports this package; only the `mesh seed` and `mesh emit`
verbs do, inside the verb. Must not import: `cli`.
"""
