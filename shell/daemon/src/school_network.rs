//! School networks, from `slate-provision.conf`: the Wi-Fi country, a WPA2/WPA3-Enterprise
//! network (PEAP/MSCHAPv2 or EAP-TLS, as a NetworkManager keyfile), a web proxy (Chromium's
//! `ProxySettings` policy and slated's `HTTPS_PROXY`), the school's time servers (a
//! systemd-timesyncd drop-in) and an SSL-inspection root CA (the device's trust bundle and
//! Chromium's `CACertificates` policy).
//!
//! Functional core, imperative shell: [`parse`] checks the settings' text, [`verify_files`] that
//! the certificate and key files they name (read from the SD card by the caller) are the ones a
//! signed text records the SHA-256 of, [`check`] those files, [`render`] turns the result into
//! the files to write. All four are pure; [`apply`] does the writing. Nothing is
//! written unless everything passed: one bad key and the device stays as it was, with a message
//! naming the key.
//!
//! What stays and what goes when a key is removed: the Wi-Fi country and the Enterprise network
//! stay as last set (IT may take the password off the card once the device has it, as with
//! `wifi_psk`); the proxy, the time servers and the inspection CA are whatever the file says,
//! so removing the line removes the setting (a trusted CA or a proxy must not outlive the
//! school's decision).

pub mod apply;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use sha2::Digest as _;
use slate_protocol::provisioning::{
    card_file_sha256, is_card_file_name, is_sha256_hex, CARD_FILES,
};

/// The keys of `slate-provision.conf` this module owns (the provisioning script skips them).
pub const KEYS: &[&str] = &[
    "wifi_country",
    "wifi_eap",
    "wifi_eap_ssid",
    "wifi_eap_identity",
    "wifi_eap_anonymous_identity",
    "wifi_eap_password",
    "wifi_eap_ca",
    "wifi_eap_domain",
    "wifi_eap_client_cert",
    "wifi_eap_client_key",
    "wifi_eap_client_key_password",
    "proxy",
    "proxy_bypass",
    "proxy_pac",
    "ntp_servers",
    "ssl_inspection_ca",
    "wifi_eap_ca_sha256",
    "wifi_eap_client_cert_sha256",
    "wifi_eap_client_key_sha256",
    "ssl_inspection_ca_sha256",
];

/// A refused setting: the key and why. Nothing of the file is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub key: &'static str,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field `{}`: {}", self.key, self.message)
    }
}

impl std::error::Error for FieldError {}

fn refuse<T>(key: &'static str, message: impl Into<String>) -> Result<T, FieldError> {
    Err(FieldError { key, message: message.into() })
}

/// The settings as written, their text checked; certificate files named, not yet read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    pub country: Option<String>,
    pub enterprise: Option<EnterpriseRequest>,
    pub proxy: Option<ProxyServer>,
    pub proxy_bypass: Vec<String>,
    pub proxy_pac: Option<String>,
    pub ntp_servers: Vec<String>,
    /// File name on the boot partition.
    pub inspection_ca: Option<String>,
    /// The SHA-256 (lowercase hex) a signed text records for a named file, by the key naming
    /// the file (`ssl_inspection_ca`): [`verify_files`].
    pub file_hashes: BTreeMap<&'static str, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnterpriseRequest {
    pub ssid: String,
    pub identity: String,
    pub anonymous_identity: Option<String>,
    /// File name of the RADIUS server's CA on the boot partition.
    pub ca: String,
    /// The RADIUS server certificate's name must end with this (NetworkManager's
    /// `domain-suffix-match`): with the CA alone, any certificate that CA signed would do.
    pub domain: String,
    pub method: EapRequest,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EapRequest {
    /// PEAP with MSCHAPv2 inside.
    Peap { password: String },
    /// EAP-TLS: the device's certificate and key (file names), and the key's password.
    Tls { client_cert: String, client_key: String, key_password: Option<String> },
}

/// `http(s)://host:port`, no user name or password, no path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyServer {
    pub scheme: &'static str,
    pub host: String,
    pub port: u16,
}

impl fmt::Display for ProxyServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// Checks the text of this module's settings (`key` → value as written; other keys are not
/// looked at). Pure.
pub fn parse(settings: &BTreeMap<String, String>) -> Result<Request, FieldError> {
    let get = |key: &str| settings.get(key).map(String::as_str);
    let mut request = Request::default();

    if let Some(code) = get("wifi_country") {
        request.country = Some(country(code)?);
    }

    let eap_keys = KEYS.iter().copied().filter(|k| k.starts_with("wifi_eap_"));
    match get("wifi_eap") {
        None => {
            if let Some(key) = eap_keys.into_iter().find(|k| get(k).is_some()) {
                return refuse(key, "needs `wifi_eap = \"peap\"` or `wifi_eap = \"tls\"`");
            }
        }
        Some(method) => request.enterprise = Some(enterprise(method, settings)?),
    }

    if let Some(url) = get("proxy") {
        request.proxy = Some(proxy_server(url)?);
    }
    if let Some(list) = get("proxy_bypass") {
        if request.proxy.is_none() {
            return refuse("proxy_bypass", "needs `proxy` (a PAC file names its own exceptions)");
        }
        request.proxy_bypass = proxy_bypass(list)?;
    }
    if let Some(url) = get("proxy_pac") {
        request.proxy_pac = Some(pac_url(url)?);
    }
    if let Some(list) = get("ntp_servers") {
        request.ntp_servers = ntp_servers(list)?;
    }
    if let Some(file) = get("ssl_inspection_ca") {
        request.inspection_ca = Some(card_file("ssl_inspection_ca", file)?);
    }
    let named: Vec<&str> = files_named(&request).into_iter().map(|(k, _)| k).collect();
    for (key, hash_key) in CARD_FILES {
        let Some(hash) = get(hash_key) else { continue };
        if !named.contains(&key) {
            return refuse(
                hash_key,
                format!("records a file's SHA-256, but `{key}` names no file"),
            );
        }
        if !is_sha256_hex(hash) {
            return refuse(hash_key, "must be the file's SHA-256, 64 lowercase hex digits");
        }
        request.file_hashes.insert(key, hash.to_owned());
    }
    Ok(request)
}

/// Whether the card's files (`files`: key → bytes, as [`files_named`] lists them) are the ones
/// the text records: a file whose SHA-256 is not the recorded one is refused; with `signed`
/// (the text is a signed file's payload) so is a file the text records no hash for, since the
/// signature covers the text only. Pure.
pub fn verify_files(
    request: &Request,
    files: &BTreeMap<&'static str, Vec<u8>>,
    signed: bool,
) -> Result<(), FieldError> {
    for (key, name) in files_named(request) {
        let hash_key = CARD_FILES.iter().find(|(k, _)| *k == key).map_or("", |(_, h)| *h);
        let Some(bytes) = files.get(key) else {
            return refuse(key, "its file was not read");
        };
        match request.file_hashes.get(key) {
            Some(recorded) => {
                let actual = card_file_sha256(bytes);
                if actual != *recorded {
                    return refuse(
                        key,
                        format!(
                            "\"{name}\" on the boot partition is not the file that was signed \
                             (its SHA-256 is {actual}; `{hash_key}` records {recorded}): put \
                             back the school's file, or sign the text again with \
                             `slate-server provision sign`"
                        ),
                    );
                }
            }
            None if signed => {
                return refuse(
                    key,
                    format!(
                        "\"{name}\" is not covered by the signature: the signed text records no \
                         `{hash_key}`; sign it again with `slate-server provision sign`"
                    ),
                )
            }
            None => {}
        }
    }
    Ok(())
}

fn enterprise(
    method: &str,
    settings: &BTreeMap<String, String>,
) -> Result<EnterpriseRequest, FieldError> {
    let get = |key: &str| settings.get(key).map(String::as_str);
    let required = |key: &'static str| {
        get(key).ok_or_else(|| FieldError {
            key,
            message: format!("is required with `wifi_eap = \"{method}\"`"),
        })
    };
    let not_with = |key: &'static str, why: &str| match get(key) {
        Some(_) => refuse(key, format!("is not used with `wifi_eap = \"{method}\"`: {why}")),
        None => Ok(()),
    };
    let method = match method {
        "peap" => {
            not_with("wifi_eap_client_cert", "PEAP signs in with a password")?;
            not_with("wifi_eap_client_key", "PEAP signs in with a password")?;
            not_with("wifi_eap_client_key_password", "PEAP signs in with a password")?;
            let password = required("wifi_eap_password")?;
            text("wifi_eap_password", password, 256)?;
            EapRequest::Peap { password: password.to_owned() }
        }
        "tls" => {
            not_with("wifi_eap_password", "EAP-TLS signs in with the certificate")?;
            let key_password = get("wifi_eap_client_key_password")
                .map(|p| text("wifi_eap_client_key_password", p, 256).map(str::to_owned))
                .transpose()?;
            EapRequest::Tls {
                client_cert: card_file("wifi_eap_client_cert", required("wifi_eap_client_cert")?)?,
                client_key: card_file("wifi_eap_client_key", required("wifi_eap_client_key")?)?,
                key_password,
            }
        }
        other => {
            return refuse(
                "wifi_eap",
                format!(
                    "must be \"peap\" (PEAP with MSCHAPv2) or \"tls\" (EAP-TLS), not \"{other}\""
                ),
            )
        }
    };
    let ssid = required("wifi_eap_ssid")?;
    if ssid.is_empty() || ssid.len() > 32 || ssid.starts_with(' ') || ssid.ends_with(' ') {
        return refuse("wifi_eap_ssid", "must be 1 to 32 bytes, no spaces at either end");
    }
    text("wifi_eap_ssid", ssid, 32)?;
    let identity = text("wifi_eap_identity", required("wifi_eap_identity")?, 128)?.to_owned();
    let anonymous_identity = get("wifi_eap_anonymous_identity")
        .map(|a| text("wifi_eap_anonymous_identity", a, 128).map(str::to_owned))
        .transpose()?;
    let ca = get("wifi_eap_ca").ok_or_else(|| FieldError {
        key: "wifi_eap_ca",
        message: "is required: without the RADIUS server's CA certificate any network with \
                  this name could take the password"
            .into(),
    })?;
    let ca = card_file("wifi_eap_ca", ca)?;
    let domain = get("wifi_eap_domain").ok_or_else(|| FieldError {
        key: "wifi_eap_domain",
        message: "is required: the RADIUS server certificate's name (like \
                  \"radius.school.example\"); with the CA alone any certificate it signed would do"
            .into(),
    })?;
    if !is_dns_name(domain) {
        return refuse("wifi_eap_domain", format!("\"{domain}\" is not a host name"));
    }
    Ok(EnterpriseRequest {
        ssid: ssid.to_owned(),
        identity,
        anonymous_identity,
        ca,
        domain: domain.to_ascii_lowercase(),
        method,
    })
}

/// A value going into a keyfile line: no control characters (a newline would start another
/// setting), no backslash (the keyfile's escape), not empty, no spaces at either end.
fn text<'a>(key: &'static str, value: &'a str, max: usize) -> Result<&'a str, FieldError> {
    if value.is_empty() || value.len() > max {
        return refuse(key, format!("must be 1 to {max} characters"));
    }
    if value.chars().any(|c| c.is_control() || c == '\\') {
        return refuse(key, "must not hold control characters or backslashes");
    }
    if value.trim() != value {
        return refuse(key, "must not start or end with a space");
    }
    Ok(value)
}

/// A file on the boot partition, by its plain name (no directories: nothing outside the card).
fn card_file(key: &'static str, name: &str) -> Result<String, FieldError> {
    if !is_card_file_name(name) {
        return refuse(
            key,
            format!("\"{name}\" must be a file name on the boot partition like \"school-ca.pem\""),
        );
    }
    Ok(name.to_owned())
}

/// ISO 3166-1 alpha-2 codes: the countries the kernel's regulatory database (wireless-regdb)
/// is keyed by.
const COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI \
    BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY \
    CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN \
    GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH \
    KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO \
    MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL \
    PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV \
    SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN \
    VU WF WS YE YT ZA ZM ZW";

fn country(code: &str) -> Result<String, FieldError> {
    let upper = code.to_ascii_uppercase();
    if upper.len() == 2 && COUNTRIES.split_ascii_whitespace().any(|c| c == upper) {
        return Ok(upper);
    }
    let hint = if upper == "UK" { " (the United Kingdom is \"GB\")" } else { "" };
    refuse("wifi_country", format!("\"{code}\" is not a two-letter country code like \"GB\"{hint}"))
}

/// A host name (letters, digits, hyphens; dots between labels).
fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && name.chars().any(|c| c.is_ascii_alphabetic())
}

/// A host: a name, an IPv4 address, or an IPv6 address (in brackets when `bracketed`).
fn host(text: &str, bracketed: bool) -> Option<String> {
    if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        return (bracketed && inner.parse::<std::net::Ipv6Addr>().is_ok())
            .then(|| text.to_ascii_lowercase());
    }
    if text.parse::<std::net::Ipv4Addr>().is_ok() {
        return Some(text.to_owned());
    }
    if !bracketed && text.parse::<std::net::Ipv6Addr>().is_ok() {
        return Some(text.to_ascii_lowercase());
    }
    is_dns_name(text).then(|| text.to_ascii_lowercase())
}

fn proxy_server(url: &str) -> Result<ProxyServer, FieldError> {
    let bad = || FieldError {
        key: "proxy",
        message: format!("\"{url}\" is not a proxy like \"http://proxy.school.example:3128\""),
    };
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("http://") {
        ("http", rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        ("https", rest)
    } else {
        return Err(bad());
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('@') {
        return refuse(
            "proxy",
            "a user name or password in the proxy address is not supported (it would be \
             readable by every program on the device)",
        );
    }
    let (host_part, port) = rest.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().ok().filter(|p| *p > 0).ok_or_else(bad)?;
    let host = host(host_part, true).ok_or_else(bad)?;
    Ok(ProxyServer { scheme, host, port })
}

/// Comma- or space-separated: host names, `*.domain` (every name under it), IPv4/IPv6
/// addresses and CIDR ranges.
fn proxy_bypass(list: &str) -> Result<Vec<String>, FieldError> {
    let mut entries = Vec::new();
    for entry in list.split([',', ' ']).filter(|e| !e.is_empty()) {
        let ok = if let Some(domain) = entry.strip_prefix("*.") {
            is_dns_name(domain)
        } else if let Some((net, len)) = entry.split_once('/') {
            match (net.parse::<std::net::IpAddr>(), len.parse::<u8>()) {
                (Ok(std::net::IpAddr::V4(_)), Ok(l)) => l <= 32,
                (Ok(std::net::IpAddr::V6(_)), Ok(l)) => l <= 128,
                _ => false,
            }
        } else {
            host(entry, false).is_some()
        };
        if !ok {
            return refuse(
                "proxy_bypass",
                format!(
                    "\"{entry}\" is not a host name, \"*.domain\", an address or a range like \
                     \"10.0.0.0/8\""
                ),
            );
        }
        entries.push(entry.to_ascii_lowercase());
    }
    if entries.is_empty() || entries.len() > 64 {
        return refuse("proxy_bypass", "give 1 to 64 entries, separated by commas");
    }
    Ok(entries)
}

fn pac_url(url: &str) -> Result<String, FieldError> {
    let bad = || FieldError {
        key: "proxy_pac",
        message: format!("\"{url}\" is not a URL like \"http://wpad.school.example/wpad.dat\""),
    };
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
    let rest = rest.ok_or_else(bad)?;
    let (authority, path) = rest.split_once('/').ok_or_else(bad)?;
    if authority.contains('@') {
        return refuse("proxy_pac", "a user name or password in the URL is not supported");
    }
    let host_part = match authority.rsplit_once(':') {
        Some((h, port)) if port.parse::<u16>().is_ok_and(|p| p > 0) => h,
        _ => authority,
    };
    host(host_part, true).ok_or_else(bad)?;
    let path_ok = path.len() <= 1024 && path.chars().all(|c| c.is_ascii_graphic() && c != '\\');
    if !path_ok {
        return Err(bad());
    }
    Ok(url.to_owned())
}

fn ntp_servers(list: &str) -> Result<Vec<String>, FieldError> {
    let mut servers = Vec::new();
    for server in list.split([',', ' ']).filter(|e| !e.is_empty()) {
        match host(server, false) {
            Some(h) => servers.push(h),
            None => {
                return refuse(
                    "ntp_servers",
                    format!("\"{server}\" is not a host name or an address"),
                )
            }
        }
    }
    if servers.is_empty() || servers.len() > 8 {
        return refuse("ntp_servers", "give 1 to 8 time servers, separated by spaces or commas");
    }
    Ok(servers)
}

/// The card's files a request names, by the key naming them.
pub fn files_named(request: &Request) -> Vec<(&'static str, &str)> {
    let mut files = Vec::new();
    if let Some(e) = &request.enterprise {
        files.push(("wifi_eap_ca", e.ca.as_str()));
        if let EapRequest::Tls { client_cert, client_key, .. } = &e.method {
            files.push(("wifi_eap_client_cert", client_cert.as_str()));
            files.push(("wifi_eap_client_key", client_key.as_str()));
        }
    }
    if let Some(ca) = &request.inspection_ca {
        files.push(("ssl_inspection_ca", ca.as_str()));
    }
    files
}

/// A certificate authority checked: its PEM as given, and how to show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedCa {
    pub pem: Vec<u8>,
    /// Base64 DER of each certificate (Chromium's `CACertificates` takes these).
    pub der_base64: Vec<String>,
    pub subject: String,
    /// SHA-256 of the (first) certificate's DER, as `AB:CD:...`.
    pub fingerprint: String,
}

/// Everything checked: what [`render`] needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settings {
    pub country: Option<String>,
    pub enterprise: Option<Enterprise>,
    pub proxy: Option<ProxyServer>,
    pub proxy_bypass: Vec<String>,
    pub proxy_pac: Option<String>,
    pub ntp_servers: Vec<String>,
    pub inspection_ca: Option<CheckedCa>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enterprise {
    pub request: EnterpriseRequest,
    pub ca: CheckedCa,
    /// EAP-TLS: the client certificate and key PEM.
    pub client: Option<(Vec<u8>, Vec<u8>)>,
}

/// Checks the files a request names (`files`: key → the file's bytes, as [`files_named`]
/// lists them). Pure.
pub fn check(
    request: Request,
    files: &BTreeMap<&'static str, Vec<u8>>,
) -> Result<Settings, FieldError> {
    let file = |key: &'static str| {
        files.get(key).ok_or_else(|| FieldError { key, message: "its file was not read".into() })
    };
    let enterprise = match request.enterprise {
        None => None,
        Some(e) => {
            let ca = certificate_authority("wifi_eap_ca", file("wifi_eap_ca")?)?;
            let client = match &e.method {
                EapRequest::Peap { .. } => None,
                EapRequest::Tls { key_password, .. } => {
                    let cert = file("wifi_eap_client_cert")?;
                    client_certificate(cert)?;
                    let key = file("wifi_eap_client_key")?;
                    private_key(key, key_password.is_some())?;
                    Some((cert.clone(), key.clone()))
                }
            };
            Some(Enterprise { request: e, ca, client })
        }
    };
    let inspection_ca = match &request.inspection_ca {
        None => None,
        Some(_) => {
            let ca = certificate_authority("ssl_inspection_ca", file("ssl_inspection_ca")?)?;
            if ca.der_base64.len() != 1 {
                return refuse(
                    "ssl_inspection_ca",
                    "must hold exactly one certificate, the inspection root CA",
                );
            }
            Some(ca)
        }
    };
    Ok(Settings {
        country: request.country,
        enterprise,
        proxy: request.proxy,
        proxy_bypass: request.proxy_bypass,
        proxy_pac: request.proxy_pac,
        ntp_servers: request.ntp_servers,
        inspection_ca,
    })
}

/// The PEM sections of a file: (label, DER). Anything outside the sections is ignored, as
/// openssl does; a section that does not decode is refused.
fn pem_sections(key: &'static str, pem: &[u8]) -> Result<Vec<(String, Vec<u8>)>, FieldError> {
    use base64::Engine as _;
    let text = std::str::from_utf8(pem)
        .map_err(|_| FieldError { key, message: "is not a PEM file (not text)".into() })?;
    let mut sections = Vec::new();
    let mut lines = text.lines().map(str::trim_end);
    while let Some(line) = lines.next() {
        let Some(label) = line.strip_prefix("-----BEGIN ").and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut body = String::new();
        let mut closed = false;
        for line in lines.by_ref() {
            if line == end {
                closed = true;
                break;
            }
            // Headers of the old encrypted-key format (`Proc-Type: 4,ENCRYPTED`) are kept as
            // a marker; base64 lines are collected.
            if line.contains(':') {
                sections.push((format!("{label} HEADER {line}"), Vec::new()));
                continue;
            }
            body.push_str(line.trim());
        }
        if !closed {
            return refuse(key, format!("its {label} block has no END line"));
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|_| FieldError { key, message: format!("its {label} block is not base64") })?;
        sections.push((label.to_owned(), der));
    }
    Ok(sections)
}

fn certificate_authority(key: &'static str, pem: &[u8]) -> Result<CheckedCa, FieldError> {
    use base64::Engine as _;
    let sections = pem_sections(key, pem)?;
    let mut der_base64 = Vec::new();
    let mut first: Option<(String, String)> = None;
    for (label, der) in &sections {
        if label != "CERTIFICATE" {
            return refuse(key, format!("holds a {label}: only CA certificates belong here"));
        }
        let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| FieldError {
            key,
            message: format!("holds a certificate that does not parse: {e}"),
        })?;
        let is_ca = matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
        if !is_ca {
            return refuse(
                key,
                format!(
                    "\"{}\" is not a CA certificate (no basicConstraints CA:TRUE): give the \
                     authority's certificate, not a server's",
                    cert.subject()
                ),
            );
        }
        if first.is_none() {
            first = Some((cert.subject().to_string(), fingerprint(der)));
        }
        der_base64.push(base64::engine::general_purpose::STANDARD.encode(der));
    }
    let Some((subject, fingerprint)) = first else {
        return refuse(key, "holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
    };
    Ok(CheckedCa { pem: pem.to_vec(), der_base64, subject, fingerprint })
}

fn client_certificate(pem: &[u8]) -> Result<(), FieldError> {
    const KEY: &str = "wifi_eap_client_cert";
    let sections = pem_sections(KEY, pem)?;
    let certs: Vec<_> = sections.iter().filter(|(l, _)| l == "CERTIFICATE").collect();
    if certs.is_empty() || certs.len() != sections.len() {
        return refuse(KEY, "must hold the device's certificate (PEM), and nothing else");
    }
    let (_, cert) = x509_parser::parse_x509_certificate(&certs[0].1).map_err(|e| FieldError {
        key: KEY,
        message: format!("holds a certificate that does not parse: {e}"),
    })?;
    if matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca) {
        return refuse(KEY, "is a CA certificate: give the device's own certificate");
    }
    Ok(())
}

fn private_key(pem: &[u8], has_password: bool) -> Result<(), FieldError> {
    const KEY: &str = "wifi_eap_client_key";
    let sections = pem_sections(KEY, pem)?;
    let keys: Vec<_> = sections
        .iter()
        .filter(|(l, _)| {
            ["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY"]
                .contains(&l.as_str())
        })
        .collect();
    if keys.len() != 1 {
        return refuse(KEY, "must hold exactly one PEM private key");
    }
    let encrypted = keys[0].0 == "ENCRYPTED PRIVATE KEY"
        || sections.iter().any(|(l, _)| l.contains("HEADER Proc-Type: 4,ENCRYPTED"));
    match (encrypted, has_password) {
        (true, false) => {
            refuse("wifi_eap_client_key_password", "is required: the client key is encrypted")
        }
        (false, true) => refuse(
            "wifi_eap_client_key_password",
            "is not needed: the client key is not encrypted (remove the line)",
        ),
        _ => Ok(()),
    }
}

fn fingerprint(der: &[u8]) -> String {
    let digest = sha2::Sha256::digest(der);
    digest.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

/// Where the rendered files go (all movable, for tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// NetworkManager's keyfiles (`/etc/NetworkManager/system-connections`).
    pub nm_dir: PathBuf,
    /// This module's state on the data partition (`/var/lib/slate-system/network`).
    pub state_dir: PathBuf,
}

impl Layout {
    /// The root-only directory the Enterprise network's certificates and key are copied to.
    pub fn certs_dir(&self) -> PathBuf {
        self.state_dir.join("certs")
    }
    /// The local CA directory `update-ca-certificates --localcertsdir` reads.
    pub fn local_ca_dir(&self) -> PathBuf {
        self.state_dir.join("local-ca")
    }
    /// The trust store `update-ca-certificates --etccertsdir` writes (the bundle in it is
    /// `ca-certificates.crt`).
    pub fn trust_dir(&self) -> PathBuf {
        self.state_dir.join("ssl-certs")
    }
    pub fn trust_bundle(&self) -> PathBuf {
        self.trust_dir().join("ca-certificates.crt")
    }
}

pub const KEYFILE: &str = "slate-wifi-eap.nmconnection";
pub const COUNTRY_FILE: &str = "wifi-country";
pub const TIMESYNCD_FILE: &str = "timesyncd.conf";
pub const CHROMIUM_FILE: &str = "chromium-policy.json";
pub const ENV_FILE: &str = "network.env";
pub const INSPECTION_CA_FILE: &str = "slate-ssl-inspection.crt";

/// One file to write, atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub path: PathBuf,
    pub contents: Vec<u8>,
    pub mode: u32,
}

/// What applying means: files to write (in order), files to remove, and whether the trust
/// store is to be rebuilt afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub write: Vec<Output>,
    pub remove: Vec<PathBuf>,
    pub rebuild_trust: bool,
}

/// The files for `settings`. `uuid` is the Enterprise connection's (kept by the caller from
/// the last keyfile, so NetworkManager sees the same connection). Pure.
pub fn render(settings: &Settings, layout: &Layout, uuid: &str) -> Plan {
    let mut plan = Plan::default();
    let out = |path: PathBuf, contents: Vec<u8>, mode: u32| Output { path, contents, mode };

    if let Some(country) = &settings.country {
        plan.write.push(out(
            layout.state_dir.join(COUNTRY_FILE),
            format!("{country}\n").into_bytes(),
            0o644,
        ));
    }
    if let Some(e) = &settings.enterprise {
        let certs = layout.certs_dir();
        plan.write.push(out(certs.join("eap-ca.pem"), e.ca.pem.clone(), 0o600));
        if let Some((cert, key)) = &e.client {
            plan.write.push(out(certs.join("eap-client.pem"), cert.clone(), 0o600));
            plan.write.push(out(certs.join("eap-client-key.pem"), key.clone(), 0o600));
        }
        plan.write.push(out(
            layout.nm_dir.join(KEYFILE),
            enterprise_keyfile(e, &certs, uuid).into_bytes(),
            0o600,
        ));
    }
    plan.write.push(out(
        layout.state_dir.join(TIMESYNCD_FILE),
        timesyncd_dropin(&settings.ntp_servers).into_bytes(),
        0o644,
    ));
    let mut policy = serde_json::to_vec_pretty(&chromium_policy(settings)).expect("serialises");
    policy.push(b'\n');
    plan.write.push(out(layout.state_dir.join(CHROMIUM_FILE), policy, 0o644));
    let trust = settings.inspection_ca.as_ref().map(|_| layout.trust_bundle());
    plan.write.push(out(
        layout.state_dir.join(ENV_FILE),
        environment(settings, trust.as_deref()).into_bytes(),
        0o644,
    ));
    let ca_file = layout.local_ca_dir().join(INSPECTION_CA_FILE);
    match &settings.inspection_ca {
        Some(ca) => {
            plan.write.push(out(ca_file, ca.pem.clone(), 0o644));
            plan.rebuild_trust = true;
        }
        None => plan.remove.push(ca_file),
    }
    plan
}

/// The Enterprise network as a NetworkManager keyfile.
pub fn enterprise_keyfile(e: &Enterprise, certs: &Path, uuid: &str) -> String {
    let r = &e.request;
    let mut k = format!(
        "# Written by slate-network from slate-provision.conf; changes here are overwritten.\n\
         [connection]\nid=slate-wifi-eap\nuuid={uuid}\ntype=wifi\nautoconnect=true\n\n\
         [wifi]\nmode=infrastructure\nssid={}\n\n\
         [wifi-security]\nkey-mgmt=wpa-eap\n\n\
         [802-1x]\n",
        r.ssid
    );
    match &r.method {
        EapRequest::Peap { password } => {
            k.push_str("eap=peap;\nphase2-auth=mschapv2\n");
            k.push_str(&format!("identity={}\n", r.identity));
            k.push_str(&format!("password={password}\n"));
        }
        EapRequest::Tls { key_password, .. } => {
            k.push_str("eap=tls;\n");
            k.push_str(&format!("identity={}\n", r.identity));
            k.push_str(&format!("client-cert={}\n", certs.join("eap-client.pem").display()));
            k.push_str(&format!("private-key={}\n", certs.join("eap-client-key.pem").display()));
            match key_password {
                Some(password) => k.push_str(&format!("private-key-password={password}\n")),
                // An unencrypted key: without "not required" (4) NetworkManager asks an agent
                // for its password, and a kiosk has none (found by the handshake test).
                None => k.push_str("private-key-password-flags=4\n"),
            }
        }
    }
    if let Some(anonymous) = &r.anonymous_identity {
        k.push_str(&format!("anonymous-identity={anonymous}\n"));
    }
    k.push_str(&format!(
        "ca-cert={}\ndomain-suffix-match={}\n\n\
         [ipv4]\nmethod=auto\n\n[ipv6]\nmethod=auto\naddr-gen-mode=stable-privacy\n",
        certs.join("eap-ca.pem").display(),
        r.domain
    ));
    k
}

/// systemd-timesyncd's drop-in: the school's servers first (`NTP=` wins over the image's
/// `FallbackNTP=`). Without any, a drop-in that sets nothing.
pub fn timesyncd_dropin(servers: &[String]) -> String {
    let mut s = String::from(
        "# Written by slate-network from slate-provision.conf (ntp_servers).\n[Time]\n",
    );
    if !servers.is_empty() {
        s.push_str(&format!("NTP={}\n", servers.join(" ")));
    }
    s
}

/// The kiosk browser's part: `ProxySettings` and `CACertificates` (slate-ui adds them to each
/// web app's managed policy). An empty object when neither is set: direct connections.
pub fn chromium_policy(settings: &Settings) -> serde_json::Value {
    let mut policy = serde_json::Map::new();
    if let Some(pac) = &settings.proxy_pac {
        policy.insert(
            "ProxySettings".into(),
            serde_json::json!({ "ProxyMode": "pac_script", "ProxyPacUrl": pac }),
        );
    } else if let Some(proxy) = &settings.proxy {
        let mut bypass = settings.proxy_bypass.clone();
        bypass.push("<local>".into());
        policy.insert(
            "ProxySettings".into(),
            serde_json::json!({
                "ProxyMode": "fixed_servers",
                "ProxyServer": proxy.to_string(),
                "ProxyBypassList": bypass.join(","),
            }),
        );
    }
    if let Some(ca) = &settings.inspection_ca {
        policy.insert("CACertificates".into(), serde_json::json!(ca.der_base64));
    }
    serde_json::Value::Object(policy)
}

/// slated's environment (`EnvironmentFile=`): the proxy for its reqwest client (which reads
/// `HTTPS_PROXY`/`NO_PROXY`; a PAC file it cannot read, so with only `proxy_pac` it goes
/// direct), and the trust bundle with the inspection CA (`SSL_CERT_FILE`, which
/// rustls-native-certs reads). Empty: direct, the system's trust.
pub fn environment(settings: &Settings, trust_bundle: Option<&Path>) -> String {
    let mut env = String::from("# Written by slate-network from slate-provision.conf.\n");
    if let Some(proxy) = &settings.proxy {
        env.push_str(&format!("HTTPS_PROXY={proxy}\nHTTP_PROXY={proxy}\n"));
        let mut no_proxy = vec!["localhost".to_owned(), "127.0.0.1".into(), "::1".into()];
        // `*.domain` is Chromium's way; the NO_PROXY convention is `.domain`.
        no_proxy.extend(settings.proxy_bypass.iter().map(|e| match e.strip_prefix('*') {
            Some(rest) => rest.to_owned(),
            None => e.clone(),
        }));
        env.push_str(&format!("NO_PROXY={}\n", no_proxy.join(",")));
    }
    if let Some(bundle) = trust_bundle {
        env.push_str(&format!("SSL_CERT_FILE={}\n", bundle.display()));
    }
    env
}

/// What to say on the console once applied (nothing secret: no passwords, no identities).
pub fn summary(settings: &Settings) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(c) = &settings.country {
        lines.push(format!("Wi-Fi country {c}"));
    }
    if let Some(e) = &settings.enterprise {
        let method = match e.request.method {
            EapRequest::Peap { .. } => "PEAP/MSCHAPv2",
            EapRequest::Tls { .. } => "EAP-TLS",
        };
        lines.push(format!(
            "Enterprise Wi-Fi \"{}\" ({method}), RADIUS server {} under CA \"{}\" (SHA-256 {})",
            e.request.ssid, e.request.domain, e.ca.subject, e.ca.fingerprint
        ));
    }
    match (&settings.proxy, &settings.proxy_pac) {
        (_, Some(pac)) => lines.push(format!("proxy: PAC file {pac} (browser)")),
        (Some(p), None) => lines.push(format!("proxy {p}")),
        (None, None) => lines.push("no proxy".into()),
    }
    if settings.proxy_pac.is_some() {
        match &settings.proxy {
            Some(p) => lines.push(format!("proxy {p} (slated)")),
            None => lines.push("slated connects directly (it cannot read a PAC file)".into()),
        }
    }
    if settings.ntp_servers.is_empty() {
        lines.push("time servers: the image's defaults".into());
    } else {
        lines.push(format!("time servers: {}", settings.ntp_servers.join(" ")));
    }
    match &settings.inspection_ca {
        Some(ca) => lines.push(format!(
            "SSL-inspection CA \"{}\" trusted, SHA-256 fingerprint {}",
            ca.subject, ca.fingerprint
        )),
        None => lines.push("no SSL-inspection CA".into()),
    }
    lines
}

#[cfg(test)]
mod tests;
