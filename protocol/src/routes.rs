//! The device API's paths, one place for the server's router and the device's client. The
//! list path takes the list's name after [`DEVICE_LISTS`] ([`device_list`]); the server's route
//! pattern for it is [`DEVICE_LIST_ROUTE`].

/// `POST`: a device enrolls with its one-time token.
pub const ENROLL: &str = "/api/v1/enroll";
/// `POST`: a device with no number asks, with its class-set token, which number IT listed for
/// its serial ([`crate::class_set`]).
pub const ENROLL_NUMBER: &str = "/api/v1/enroll/number";
/// `POST`: a batch of events.
pub const EVENTS: &str = "/api/v1/events";
/// `GET`: the signed policy bundles.
pub const DEVICE_POLICY: &str = "/api/v1/device/policy";
/// `GET` + a list's name: one list file the filter policy's manifest names.
pub const DEVICE_LISTS: &str = "/api/v1/device/lists/";
/// The server's route pattern for [`DEVICE_LISTS`].
pub const DEVICE_LIST_ROUTE: &str = "/api/v1/device/lists/{name}";
/// `POST`: an enrolled device asks for a replacement credential (when an answer to its events
/// said `rotate_credential`).
pub const DEVICE_CREDENTIAL: &str = "/api/v1/device/credential";
/// `GET`: teacher commands, long-polled.
pub const DEVICE_COMMANDS: &str = "/api/v1/device/commands";
/// `POST`: the device's image version and update state; the answer offers a bundle
/// ([`crate::update`]).
pub const DEVICE_UPDATE: &str = "/api/v1/device/update";
/// `GET` + a bundle's SHA-256: the bundle's bytes, resumable with `Range`.
pub const DEVICE_UPDATE_BUNDLES: &str = "/api/v1/device/update/bundles/";
/// The server's route pattern for [`DEVICE_UPDATE_BUNDLES`].
pub const DEVICE_UPDATE_BUNDLE_ROUTE: &str = "/api/v1/device/update/bundles/{sha256}";

/// The path of list `name` (a name the manifest check accepted: `check_list_name`).
pub fn device_list(name: &str) -> String {
    format!("{DEVICE_LISTS}{name}")
}

/// The path of the bundle with this SHA-256 (an offer's, which `UpdateReply::from_json` checked).
pub fn device_update_bundle(sha256: &str) -> String {
    format!("{DEVICE_UPDATE_BUNDLES}{sha256}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_route_and_the_list_path_agree() {
        assert_eq!(DEVICE_LIST_ROUTE.replace("{name}", "adult"), device_list("adult"));
        assert_eq!(device_list("iwf"), "/api/v1/device/lists/iwf");
        assert_eq!(
            DEVICE_UPDATE_BUNDLE_ROUTE.replace("{sha256}", "ab12"),
            device_update_bundle("ab12")
        );
    }
}
