//! `hookline-api`: the HTTP face of Hookline.
//!
//! An actix-web server with both API surfaces (`docs/architecture.md`) — the flexEngage
//! webhook routes (`/v1/{brandId}/webhooks…`) and the FDX routes (`/v1/services/webhook…`) — bearer-token
//! auth, per-brand rate limits, health checks, and migrations at start. `main.rs` only parses
//! the command line and calls [`cli::run`]; tests build [`startup::Application`] directly.
//!
//! Layout:
//! - `cli.rs`: `serve`, `migrate`, `token`, `secrets`, `portal-link`.
//! - `startup.rs`: building the server from settings; database preparation.
//! - `state.rs`: what handlers share (pool, authenticator, rate limiter, settings).
//! - `dispatch.rs`: publishing delivery messages after the commit, off the request path.
//! - `ingest.rs`: group commit of single-event ingests.
//! - `auth/`: JWT verification, the `Principal` extractor, token minting.
//! - `error.rs`: the one error type and its flexEngage and FDX renderings.
//! - `manage.rs`: webhook operations both surfaces share.
//! - `routes/`: one file per resource.
//! - `portal/`: the brand portal, server-rendered pages under `/portal/`.
//! - `telemetry.rs`: logging.

pub mod auth;
pub mod cli;
pub mod dispatch;
pub mod error;
pub mod ingest;
pub mod manage;
pub mod portal;
pub mod routes;
pub mod secrets;
pub mod startup;
pub mod state;
pub mod telemetry;

pub use startup::Application;
