//! Integration tests of `slate-server`: the real server on 127.0.0.1 with real SQLite files in
//! temporary directories (or, with `SLATE_TEST_DATABASE=postgres`, private PostgreSQL servers). One test binary (with modules) so the workspace links it once.

mod abuse;
mod accounts;
mod activity;
mod agreements;
mod alerts;
mod backups;
mod binary;
mod block_requests;
mod common;
mod desk;
mod device_api;
mod exports;
mod filter_checks;
mod forms;
mod http2;
mod https;
mod languages;
mod monitoring;
mod openapi;
mod policy;
mod postgres;
mod recorded_incidents;
mod recovery;
mod retention;
mod role_matrix;
mod ssh_access;
mod staff;
mod store_story;
mod updates;
