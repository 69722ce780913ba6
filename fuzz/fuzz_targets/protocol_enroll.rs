//! `POST /api/v1/enroll`: a device's enrollment request, as the server decodes it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use slate_protocol::EnrollRequest;

fuzz_target!(|data: &[u8]| {
    let _ = EnrollRequest::from_json(data);
});
