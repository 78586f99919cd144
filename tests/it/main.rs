//! The one integration-test binary: tests at the boundaries users see — the export
//! file and its corpus of corrupted ledgers, the command line, the wire format — plus
//! properties of whole exports and the tidy checks of the code base.

mod api_security;
mod appender;
mod bench;
mod cli;
mod cli_query;
mod cluster;
mod corpus;
mod dashboard;
mod drill;
mod launcher;
mod nats_acl;
mod nats_restart;
mod pipeline;
mod projector;
mod properties;
mod services;
mod simulation;
mod support;
mod tidy;
mod wire;
