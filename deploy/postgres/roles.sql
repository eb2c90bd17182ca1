-- One PostgreSQL role per service: the list of the shop's database roles,
-- and the bootstrap that creates them. Run it with an administrative
-- connection (a superuser, or a role with CREATEROLE that owns the
-- database) and psql 15 or later, as often as you like: every step is
-- idempotent.
--
--   psql -X -v ON_ERROR_STOP=1 -d "$ADMIN_URL" -f deploy/postgres/roles.sql
--   psql ... -v prefix=run42_ -f deploy/postgres/roles.sql
--
-- For each service it makes sure that
--   * the role exists (LOGIN, no other attribute), named after the service
--     with '_' for '-' (order-service: order_service);
--   * its schema exists and belongs to it: prefix || role, so order_service
--     by default, the daemons' DATABASE_SCHEMA default. A prefix gives
--     another set of schemas for the same roles (the test harnesses run
--     several shops on one database this way). A schema that a former
--     owner filled (the single-role shop of earlier releases) is handed
--     over with everything in it;
--   * it may CONNECT to the current database, and nothing else: it has no
--     right on another service's schema, and nobody but the database's
--     owner may create schemas, temporary tables or objects in public.
--
-- Passwords come from the environment of psql, one variable per role,
-- <ROLE>_DB_PASSWORD in capitals (ORDER_SERVICE_DB_PASSWORD). A role whose
-- variable is unset or empty keeps the password it has (none at first:
-- it cannot log in where the server asks for one). Running the script
-- again with a new value is how a password is rotated
-- (docs/least-privilege.md). The passwords are sent to the server only
-- inside ALTER ROLE, with statement logging turned off for this session
-- when the connection may do so, and are never printed.
--
-- Adding a service: its line in the VALUES list below, and its \set,
-- \getenv and \unset lines.

\set ON_ERROR_STOP on
\set QUIET on
-- \getenv, below, came with psql 15: stop an older one with a reason.
SELECT :VERSION_NUM >= 150000 AS psql_has_getenv
\gset
\if :psql_has_getenv
\else
DO $$ BEGIN RAISE EXCEPTION 'deploy/postgres/roles.sql needs psql 15 or later (\getenv)'; END $$;
\endif
SET client_min_messages = warning;
\if :{?prefix}
\else
\set prefix ''
\endif

-- Unset variables read as empty: \getenv leaves a variable alone when the
-- environment has no such name.
\set pw_order_service ''
\set pw_payment_service ''
\set pw_inventory_service ''
\set pw_email_service ''
\set pw_analytics_service ''
\set pw_shipping_service ''
\getenv pw_order_service ORDER_SERVICE_DB_PASSWORD
\getenv pw_payment_service PAYMENT_SERVICE_DB_PASSWORD
\getenv pw_inventory_service INVENTORY_SERVICE_DB_PASSWORD
\getenv pw_email_service EMAIL_SERVICE_DB_PASSWORD
\getenv pw_analytics_service ANALYTICS_SERVICE_DB_PASSWORD
\getenv pw_shipping_service SHIPPING_SERVICE_DB_PASSWORD

-- Nothing below may end up in the server's log with a password in it.
\o /dev/null
SELECT pg_catalog.set_config('log_statement', 'none', false),
       pg_catalog.set_config('log_min_error_statement', 'panic', false)
 WHERE (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user);
\o

BEGIN;

CREATE TEMPORARY TABLE es_service_roles (role text PRIMARY KEY, password text) ON COMMIT DROP;
INSERT INTO es_service_roles VALUES
  ('order_service', :'pw_order_service'),
  ('payment_service', :'pw_payment_service'),
  ('inventory_service', :'pw_inventory_service'),
  ('email_service', :'pw_email_service'),
  ('analytics_service', :'pw_analytics_service'),
  ('shipping_service', :'pw_shipping_service');

-- Roles. Two bootstraps at once would race on pg_authid; the lock
-- serialises them (it is released at COMMIT).
SELECT pg_catalog.pg_advisory_xact_lock(hashtext('eventshop roles.sql')) AS locked
\gset
SELECT format('CREATE ROLE %I LOGIN', role)
  FROM es_service_roles
 WHERE role NOT IN (SELECT rolname FROM pg_catalog.pg_roles)
\gexec
-- Only LOGIN: a role made by hand with more gets it taken away.
SELECT format('ALTER ROLE %I NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS LOGIN', role)
  FROM es_service_roles
\gexec
SELECT format('ALTER ROLE %I PASSWORD %L', role, password)
  FROM es_service_roles
 WHERE password <> ''
\gexec

-- Who may do what in this database: CONNECT for the service roles, and no
-- CREATE (new schemas) or TEMPORARY for anybody but the owner.
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database())
\gexec
SELECT format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), role)
  FROM es_service_roles
\gexec
-- PostgreSQL 15 and later revoke this already; older ones do not.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- Schemas, owned by their service's role.
SELECT format('CREATE SCHEMA IF NOT EXISTS %I AUTHORIZATION %I', :'prefix' || role, role)
  FROM es_service_roles
\gexec
SELECT format('ALTER SCHEMA %I OWNER TO %I', n.nspname, r.role)
  FROM es_service_roles r
  JOIN pg_catalog.pg_namespace n ON n.nspname = :'prefix' || r.role
 WHERE n.nspowner <> (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = r.role)
\gexec
-- What another role created in a schema (tables, their sequences, views,
-- functions) goes to the schema's role, so that its migrations can alter it.
SELECT format('ALTER %s %I.%I OWNER TO %I',
              CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                             WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END,
              n.nspname, c.relname, r.role)
  FROM es_service_roles r
  JOIN pg_catalog.pg_namespace n ON n.nspname = :'prefix' || r.role
  JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S')
   AND c.relowner <> (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = r.role)
   -- A sequence owned by a column follows its table.
   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                    WHERE d.objid = c.oid AND d.classid = 'pg_catalog.pg_class'::regclass
                      AND d.deptype IN ('a', 'i') AND c.relkind = 'S')
\gexec
SELECT format('ALTER ROUTINE %s OWNER TO %I', p.oid::regprocedure, r.role)
  FROM es_service_roles r
  JOIN pg_catalog.pg_namespace n ON n.nspname = :'prefix' || r.role
  JOIN pg_catalog.pg_proc p ON p.pronamespace = n.oid
 WHERE p.proowner <> (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = r.role)
\gexec
-- Nobody else keeps a right on a service's schema.
SELECT format('REVOKE ALL ON SCHEMA %I FROM PUBLIC', :'prefix' || role)
  FROM es_service_roles
\gexec

SELECT format('roles.sql: %s roles and schemas %s<role> in place', count(*), :'prefix') AS done
  FROM es_service_roles
\gset
\echo :done
COMMIT;

\unset pw_order_service
\unset pw_payment_service
\unset pw_inventory_service
\unset pw_email_service
\unset pw_analytics_service
\unset pw_shipping_service
