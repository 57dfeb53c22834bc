"""Where a mesh lives and what it declares: the project folder and MESH_HOME (`locations`), the
Dagster instance of a MESH_HOME (`dagster_instance`), PostgreSQL URLs of the settings
(`postgres_url`), the secrets of the environment that dbt must not render
(`environment_secrets`) and the mesh as described: every descriptor loaded (`mesh`).

May import only: `descriptor`, `sql`, `text`, `governance.masking`; storage, governance and everything
above build on it.
"""
