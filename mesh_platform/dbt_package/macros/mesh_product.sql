{#-
  A data product built straight into the Parquet file the platform audits and then publishes
  (renames into the product store), so its rows are written once: the relation is a view over that
  file. The platform chooses this materialization for product models of the DuckDB target at run
  time (mesh_platform/defs/dbt_runner.py); MESH_PRODUCT_STAGING is the step's staging folder.
-#}
{% materialization mesh_product, adapter="duckdb" %}
  {%- set location = env_var('MESH_PRODUCT_STAGING') ~ '/' ~ model['name'] ~ '.parquet' -%}
  {%- set existing_relation = load_cached_relation(this) -%}
  {%- set target_relation = this.incorporate(type='view') -%}
  {%- set query = sql -%}
  {%- if config.get('contract').enforced -%}
    {{ get_assert_columns_equivalent(sql) }}
    {%- set query = get_select_subquery(sql) -%}
  {%- endif -%}

  {{ run_hooks(pre_hooks, inside_transaction=False) }}
  {{ run_hooks(pre_hooks, inside_transaction=True) }}

  {% call statement('write') -%}
    copy (
      {{ query }}
    ) to '{{ location }}' ({{ env_var('MESH_PARQUET_OPTIONS') }})
  {%- endcall %}
  {% if existing_relation is not none and existing_relation.type != 'view' %}
    {{ adapter.drop_relation(existing_relation) }}
  {% endif %}
  {% call statement('main') -%}
    create or replace view {{ target_relation }} as select * from read_parquet('{{ location }}')
  {%- endcall %}

  {{ run_hooks(post_hooks, inside_transaction=True) }}
  {% do persist_docs(target_relation, model) %}
  {{ adapter.commit() }}
  {{ run_hooks(post_hooks, inside_transaction=False) }}
  {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}
