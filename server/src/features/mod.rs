pub mod device_api;
pub mod incidents;
pub mod setup;
pub mod sign_in;
