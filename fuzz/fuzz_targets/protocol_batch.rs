//! `POST /api/v1/events`: a device's batch of events, as the server decodes it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use slate_protocol::Batch;

fuzz_target!(|data: &[u8]| {
    if let Ok(batch) = Batch::from_json(data) {
        // What was accepted must say the same thing when sent again (the device re-uploads
        // from its spool): encoding it and decoding it back gives the same batch.
        let again = Batch::from_json(&batch.to_json()).expect("an accepted batch re-encodes");
        assert_eq!(again, batch);
    }
});
