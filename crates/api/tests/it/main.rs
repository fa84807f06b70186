//! Integration tests of `hookline-api`: the real server in-process on port 0, the real
//! Postgres of this machine, each test in a database of its own (see `helpers`).

mod auth;
mod contract;
mod events;
mod fdx;
mod health;
mod helpers;
mod ingest_group;
mod outage;
mod portal;
mod process;
mod rate_limits;
mod secrets;
mod webhooks;
