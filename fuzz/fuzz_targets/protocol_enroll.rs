//! `POST /api/v1/enroll` and `POST /api/v1/enroll/number`: a device's enrollment request and a
//! class-set device's number request, as the server decodes them.
#![no_main]
use libfuzzer_sys::fuzz_target;
use slate_protocol::class_set::NumberRequest;
use slate_protocol::EnrollRequest;

fuzz_target!(|data: &[u8]| {
    let _ = EnrollRequest::from_json(data);
    if let Ok(request) = NumberRequest::from_json(data) {
        // What the decoder let through is already written the one way.
        let again = slate_protocol::class_set::normalise_serial(&request.serial);
        assert_eq!(again.as_deref(), Ok(request.serial.as_str()));
    }
});
