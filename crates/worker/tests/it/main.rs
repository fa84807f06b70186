//! End-to-end tests of the delivery worker, in-process, against the machine's real Postgres
//! (a database per test) and RabbitMQ (an exchange and queue per test), with real HTTP
//! receivers on port 0.

mod delivery;
mod health;
mod helpers;
mod process;
mod resilience;
