//! DealDesk's integration tests, one binary: the real app on port 0 against a fresh
//! SQLite file or PostgreSQL database per test, and a fake Claude server.

#[macro_use]
mod support;

mod admin;
mod auth;
mod budget;
mod chat;
mod chat_stream;
mod cli;
mod crash;
mod deals;
mod foresight;
mod hardening;
mod ledger;
mod limits;
mod overload;
mod pool;
mod reports;
mod reports_comps;
mod usage;
