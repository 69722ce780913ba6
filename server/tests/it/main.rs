//! Integration tests of `slate-server`: the real server on 127.0.0.1 with real SQLite files in
//! temporary directories. One test binary (with modules) so the workspace links it once.

mod accounts;
mod activity;
mod alerts;
mod binary;
mod common;
mod desk;
mod device_api;
mod https;
mod openapi;
mod policy;
mod staff;
