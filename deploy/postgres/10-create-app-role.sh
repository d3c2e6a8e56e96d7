#!/bin/bash
# Creates the database role that web, worker and beat log in as. docker-compose.yml mounts this file
# into /docker-entrypoint-initdb.d/, so the postgres image runs it once, when it initialises an empty
# data directory, as POSTGRES_USER (the owner of the tables, which `migrate` logs in as).
#
# The role is created with no privileges at all, and never owns anything: `manage.py grant_app_role`,
# which the migrate service runs after every migration, grants it exactly what the application needs
# (evidence tables: SELECT and INSERT only; TRUNCATE nowhere). Not being the owner nor a superuser, it
# cannot disable or drop the append-only triggers, replace their functions, TRUNCATE, or set
# session_replication_role.
#
# Name and password come from GUIDELINES_APP_USER and GUIDELINES_APP_PASSWORD in the postgres service's
# environment; the same values go into the DATABASE_URL of web, worker and beat. Running it again
# changes nothing (and keeps the existing password). For an existing data directory run the same
# statement once by hand: CREATE ROLE guidelines_app LOGIN PASSWORD '...';
set -e

: "${GUIDELINES_APP_USER:?set GUIDELINES_APP_USER (the application role) for the postgres service}"
: "${GUIDELINES_APP_PASSWORD:?set GUIDELINES_APP_PASSWORD for the postgres service}"

# \getenv keeps the password off psql's command line; %I and %L quote the name and the password.
psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
\getenv app_user GUIDELINES_APP_USER
\getenv app_password GUIDELINES_APP_PASSWORD
SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD %L',
              :'app_user', :'app_password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app_user') \gexec
SELECT format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), :'app_user') \gexec
SQL
