//! Staff authentication rules, as pure functions: roles (what each may do is `access`'s),
//! password hashing and policy, TOTP codes and their acceptance window, login throttling and
//! session lifetimes. No database, no HTTP: `store` keeps accounts, `staff` wires requests.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use subtle::ConstantTimeEq;

/// A staff member's role (PRODUCT.md: who uses it, and for what).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Dsl,
    DeputyDsl,
    Teacher,
    ItAdmin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Dsl, Role::DeputyDsl, Role::Teacher, Role::ItAdmin];

    pub fn name(self) -> &'static str {
        match self {
            Role::Dsl => "dsl",
            Role::DeputyDsl => "deputy_dsl",
            Role::Teacher => "teacher",
            Role::ItAdmin => "it_admin",
        }
    }

    pub fn parse(text: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.name() == text)
            .ok_or_else(|| format!("{text:?} is not a role (dsl, deputy_dsl, teacher, it_admin)"))
    }

    /// Seed 004: "dual-factor authentication is used for sensitive data". Teachers may add a
    /// second factor; these roles cannot sign in without one.
    pub fn requires_totp(self) -> bool {
        matches!(self, Role::Dsl | Role::DeputyDsl | Role::ItAdmin)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Argon2id cost. Production uses the crate's defaults (OWASP's 19 MiB, 2 passes); tests use a
/// cheap setting so an unoptimised build stays fast. The cost is stored in each hash, so a
/// hash made with either verifies under either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashCost {
    Production,
    Cheap,
}

pub fn hash_password(password: &str, cost: HashCost) -> String {
    let params = match cost {
        HashCost::Production => argon2::Params::default(),
        HashCost::Cheap => argon2::Params::new(256, 1, 1, None).expect("valid argon2 params"),
    };
    let hasher = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt: [u8; 16] = rand::random();
    hasher
        .hash_password_with_salt(password.as_bytes(), &salt)
        .expect("argon2 hashes any password with a 16-byte salt")
        .to_string()
}

/// The argon2id cost of a pupil's picture PIN hash, which `slated` checks on the device at each
/// sign-in. Why these: the secret is small (8 pictures, 2 to 6 of them, so at most 8^6 =
/// 262,144 sequences of a known length), so no cost makes it unguessable to someone holding the
/// hash; the cost only makes each guess dear. The device must check one hash per sign-in in well
/// under a second on a Raspberry Pi 4 while the daemon keeps working: 32 MiB and 3 passes is
/// about 2.5 times the staff PIN's 19 MiB × 2 (50 to 100 ms there), so roughly 150 to 300 ms on
/// a Pi 4's Cortex-A72, less on a Pi 5; 32 MiB is far within the device's memory and its limit
/// for any hash (`slate_protocol::staff::MAX_ARGON2_M_KIB`, 64 MiB). One lane: the device checks
/// one pupil at a time and an attacker gains nothing from lanes we would pay for.
pub const PICTURE_PIN_M_KIB: u32 = 32 * 1024;
pub const PICTURE_PIN_T: u32 = 3;

/// A pupil's picture PIN hashed for the staff document: argon2id of
/// `slate_protocol::kiosk::picture_pin_secret` with a random 16-byte salt, at
/// [`PICTURE_PIN_M_KIB`] and [`PICTURE_PIN_T`] (or the cheap cost in tests).
pub fn hash_picture_pin(pictures: &[String], cost: HashCost) -> String {
    let params = match cost {
        HashCost::Production => argon2::Params::new(PICTURE_PIN_M_KIB, PICTURE_PIN_T, 1, None),
        HashCost::Cheap => argon2::Params::new(256, 1, 1, None),
    }
    .expect("valid argon2 params");
    let hasher = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt: [u8; 16] = rand::random();
    hasher
        .hash_password_with_salt(&slate_protocol::kiosk::picture_pin_secret(pictures), &salt)
        .expect("argon2 hashes any secret with a 16-byte salt")
        .to_string()
}

/// Whether `password` matches a stored PHC string. A damaged string never matches.
pub fn verify_password(password: &str, phc: &str) -> bool {
    Argon2::default().verify_password(password.as_bytes(), phc).is_ok()
}

/// Shortest password staff may choose.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Checks a new password, naming what is wrong.
pub fn check_new_password(password: &str, confirm: &str, username: &str) -> Result<(), String> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(format!(
            "the new password is {chars} characters; use at least {MIN_PASSWORD_CHARS}"
        ));
    }
    if chars > 200 {
        return Err("the new password is over 200 characters".into());
    }
    if password != confirm {
        return Err("the two new passwords are not the same".into());
    }
    if password.to_lowercase().contains(&username.to_lowercase()) {
        return Err("the new password must not contain your username".into());
    }
    Ok(())
}

/// Checks a new unlock PIN for devices, naming what is wrong: 6 to 12 digits (what the device's
/// PIN pad takes and what it accepts from the staff document), typed the same twice, and not one
/// a passer-by would guess first: the same digit throughout, a run up or down (123456, 987654,
/// 890123), or a short pattern repeated (121212, 123123).
pub fn check_unlock_pin(pin: &str, confirm: &str) -> Result<(), String> {
    use slate_protocol::staff::{MAX_STAFF_PIN_DIGITS as MAX, MIN_STAFF_PIN_DIGITS as MIN};
    if !(MIN..=MAX).contains(&pin.len()) || !pin.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("PIN: {MIN} to {MAX} digits."));
    }
    if pin != confirm {
        return Err("PIN again: not the same as the PIN.".into());
    }
    let digits: Vec<u8> = pin.bytes().map(|b| b - b'0').collect();
    let steps = |step: u8| digits.windows(2).all(|w| w[1] == (w[0] + step) % 10);
    if steps(0) {
        return Err("PIN: not the same digit throughout; choose one others would not guess.".into());
    }
    if steps(1) || steps(9) {
        return Err(
            "PIN: not a run of digits such as 123456; choose one others would not guess.".into()
        );
    }
    let repeats =
        (2..=3).any(|period| digits.iter().skip(period).zip(&digits).all(|(a, b)| a == b));
    if repeats {
        return Err(
            "PIN: not a short pattern repeated such as 121212; choose one others would not guess."
                .into(),
        );
    }
    Ok(())
}

/// Checks a username: 2 to 32 of `a-z 0-9 . _ -`, so it is safe in an otpauth URI and a log.
pub fn check_username(username: &str) -> Result<(), String> {
    let ok = (2..=32).contains(&username.len())
        && username
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!("username {username:?} must be 2 to 32 of a-z, 0-9, '.', '_' or '-'"))
    }
}

/// The username typed into the sign-in form, trimmed and lowercased, if it could be one:
/// checked before it is looked up, counted, stored or audited, so a password typed into the
/// wrong field or a quarter-megabyte of junk goes nowhere.
pub fn sign_in_username(typed: &str) -> Option<String> {
    let typed = typed.trim();
    if typed.len() > 32 {
        return None;
    }
    let username = typed.to_lowercase();
    check_username(&username).ok().map(|()| username)
}

/// TOTP as authenticator apps do it: SHA-1, 6 digits, 30-second steps (RFC 6238).
pub const TOTP_STEP_SECONDS: i64 = 30;
/// Steps either side of now that still count: a phone's clock may be a little off.
pub const TOTP_SKEW_STEPS: i64 = 1;

/// A fresh 160-bit TOTP secret, base32 as apps expect it.
pub fn new_totp_secret() -> String {
    let bytes: [u8; 20] = rand::random();
    totp_rs::Secret::new_stack(bytes).to_base32()
}

/// Whether `secret` is one [`new_totp_secret`] could have made: 160 bits, 32 base32 characters.
/// The recovery form carries its new secret back, so it is checked before it is kept.
pub fn is_totp_secret(secret: &str) -> bool {
    secret.len() == 32
        && secret.bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
        && totp_rs::Secret::try_from_base32(secret).is_ok()
}

/// The 6-digit code for one time step, or `None` if the secret is not valid base32.
pub fn totp_code(secret_base32: &str, step: i64) -> Option<String> {
    let secret = totp_rs::Secret::try_from_base32(secret_base32).ok()?;
    let step = u64::try_from(step).ok()?;
    let totp = totp_rs::Builder::new().with_secret(secret).with_skew(0).build_noncompliant();
    Some(totp.generate(step * TOTP_STEP_SECONDS as u64).to_string())
}

/// The time step `now` falls in.
pub fn totp_step(now: DateTime<Utc>) -> i64 {
    now.timestamp().div_euclid(TOTP_STEP_SECONDS)
}

/// Why a TOTP code was refused (for tests and the audit log; the person is told only "not right").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpRefusal {
    Malformed,
    Wrong,
    Replayed,
}

/// Checks `code` against the steps around `now`, refusing any step at or before `last_step`
/// (each code works once). Returns the step matched, to be stored as the new `last_step`.
pub fn verify_totp(
    secret_base32: &str,
    code: &str,
    now: DateTime<Utc>,
    last_step: Option<i64>,
) -> Result<i64, TotpRefusal> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TotpRefusal::Malformed);
    }
    let current = totp_step(now);
    let mut replayed = false;
    for step in current - TOTP_SKEW_STEPS..=current + TOTP_SKEW_STEPS {
        let Some(expected) = totp_code(secret_base32, step) else { return Err(TotpRefusal::Wrong) };
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
            if last_step.is_some_and(|last| step <= last) {
                replayed = true;
                continue;
            }
            return Ok(step);
        }
    }
    Err(if replayed { TotpRefusal::Replayed } else { TotpRefusal::Wrong })
}

/// The `otpauth://` URI an authenticator app reads (from a QR code or typed in).
pub fn otpauth_uri(issuer: &str, username: &str, secret_base32: &str) -> String {
    let issuer: String =
        issuer.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    format!(
        "otpauth://totp/{issuer}:{username}?secret={secret_base32}&issuer={issuer}&algorithm=SHA1&digits=6&period={TOTP_STEP_SECONDS}"
    )
}

/// How sign-in slows down after failures: `free` failed tries cost nothing, then each try must
/// wait `first`, doubling per further failure, never more than `cap`. A delay rather than a
/// lock, so whoever fails on purpose can slow an account down but never shut its owner out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub free: u32,
    pub first: Duration,
    pub cap: Duration,
}

/// One address guessing one account: five tries, then 30 s, doubling to 15 minutes.
pub const PER_ACCOUNT_AND_ADDRESS: Backoff =
    Backoff { free: 5, first: Duration::seconds(30), cap: Duration::minutes(15) };
/// One account from everywhere, once an address has failed on it: many addresses guessing
/// together. Capped low, so its owner (the DSL during an incident) waits a minute at most.
pub const PER_ACCOUNT: Backoff =
    Backoff { free: 10, first: Duration::seconds(10), cap: Duration::minutes(1) };
/// One address, every account: a staff room shares one address, so more are free and the cap
/// is low.
pub const PER_ADDRESS: Backoff =
    Backoff { free: 20, first: Duration::seconds(5), cap: Duration::minutes(1) };
/// A key's tries are forgotten this long after its last one (longer than any cap).
pub const FORGET_TRIES_AFTER: Duration = Duration::hours(1);

/// The wait before the next try after `failures` failed ones.
pub fn backoff_delay(failures: u32, backoff: Backoff) -> Duration {
    let Some(over) = failures.checked_sub(backoff.free) else { return Duration::zero() };
    // 2^20 × any first delay is past every cap: stop doubling there.
    let doubled = backoff.first * 2i32.pow(over.min(20));
    doubled.min(backoff.cap)
}

/// Failed (or still running) tries under one key, and when the last began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tries {
    failures: u32,
    last: DateTime<Utc>,
}

impl Tries {
    fn open_at(self, backoff: Backoff) -> DateTime<Utc> {
        self.last + backoff_delay(self.failures, backoff)
    }
}

/// Recent sign-in tries by account and address, deciding who may try now. Pure: the caller
/// passes the time and holds it behind a lock. A try is counted when it is let through, before
/// its password is checked, so a burst of parallel tries cannot all pass; a success takes its
/// own count back. Keys idle for [`FORGET_TRIES_AFTER`] are pruned.
#[derive(Debug, Default)]
pub struct SignInThrottle {
    tries: HashMap<String, Tries>,
    last_pruned: Option<DateTime<Utc>>,
}

/// The keys one try is counted under, with the backoff of each.
struct TryKeys {
    pair: String,
    account: String,
    address: String,
}

impl TryKeys {
    /// `username` has been through [`check_username`]; `address` is `None` without one.
    fn new(username: &str, address: Option<IpAddr>) -> Self {
        let address = address.map_or_else(|| "-".to_owned(), |a| a.to_string());
        TryKeys {
            pair: format!("{username}@{address}"),
            account: format!("user:{username}"),
            address: format!("ip:{address}"),
        }
    }
}

impl SignInThrottle {
    /// Lets a try through now and counts it, or says when the next may come.
    pub fn admit(
        &mut self,
        username: &str,
        address: Option<IpAddr>,
        now: DateTime<Utc>,
    ) -> Result<(), DateTime<Utc>> {
        self.prune(now);
        let keys = TryKeys::new(username, address);
        let pair = self.tries.get(&keys.pair).copied();
        let mut checks = vec![(&keys.pair, PER_ACCOUNT_AND_ADDRESS), (&keys.address, PER_ADDRESS)];
        // An address that has not failed on this account is not held back by others' failures
        // on it: nobody can keep the owner out from elsewhere.
        if pair.is_some() {
            checks.push((&keys.account, PER_ACCOUNT));
        }
        let open_at = checks
            .iter()
            .filter_map(|(key, backoff)| self.tries.get(*key).map(|t| t.open_at(*backoff)))
            .max();
        if let Some(open_at) = open_at.filter(|at| *at > now) {
            return Err(open_at);
        }
        for key in [keys.pair, keys.account, keys.address] {
            let tries = self.tries.entry(key).or_insert(Tries { failures: 0, last: now });
            tries.failures = tries.failures.saturating_add(1);
            tries.last = now;
        }
        Ok(())
    }

    /// A try let through by [`admit`](Self::admit) succeeded: the account's failures are
    /// forgotten, and the address loses this try's count (not others' failures).
    pub fn succeeded(&mut self, username: &str, address: Option<IpAddr>) {
        let keys = TryKeys::new(username, address);
        self.tries.remove(&keys.pair);
        self.tries.remove(&keys.account);
        if let Some(tries) = self.tries.get_mut(&keys.address) {
            tries.failures = tries.failures.saturating_sub(1);
        }
    }

    /// How many keys are kept (for tests).
    pub fn len(&self) -> usize {
        self.tries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tries.is_empty()
    }

    /// Forgets keys idle for [`FORGET_TRIES_AFTER`], at most once a minute.
    fn prune(&mut self, now: DateTime<Utc>) {
        if self.last_pruned.is_some_and(|at| now - at < Duration::minutes(1) && now >= at) {
            return;
        }
        self.last_pruned = Some(now);
        self.tries.retain(|_, tries| now - tries.last < FORGET_TRIES_AFTER);
    }
}

/// `text` (an otpauth URI) as a QR code for a terminal, two rows of modules a line: light
/// modules drawn as blocks and dark ones left as the background, as `qrencode -t UTF8` does, for
/// the usual dark terminal, with the quiet zone around it that a phone's camera needs.
pub fn terminal_qr(text: &str) -> Result<String, qrcode::types::QrError> {
    use qrcode::render::unicode::Dense1x2;
    let code = qrcode::QrCode::new(text.as_bytes())?;
    Ok(code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

/// What a refused sign-in is told. Never which of username, password or code was wrong (that
/// would tell a guesser which names exist); but that the server has no account at all is safe to
/// say, and so is the usual reason a new account is not known here: IT made it with another
/// data directory than this server's (issue 19).
pub fn sign_in_refused(server_has_accounts: bool) -> &'static str {
    if server_has_accounts {
        "That username, password or code is not right. Check each and use the newest code from \
         your app. A new account? IT makes it on this server's console (slate-server staff add): \
         one made for another server, or with another data directory, is not known here."
    } else {
        "This server has no staff accounts yet. IT makes the first on this server's console with \
         slate-server staff add, given this server's data directory (its --data-dir)."
    }
}

/// What a sign-in held back by [`SignInThrottle`] is told: when it opens again (UK time, and in
/// how long), that nothing is locked so nobody needs to unlock it, and who helps with a
/// forgotten password: IT, with a one-time recovery link.
pub fn throttled_message(open_at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    // Whole seconds and minutes, rounded up: never a wait shorter than the real one.
    let seconds = ((open_at - now).num_milliseconds().max(0) + 999) / 1000;
    let wait = if seconds < 90 {
        format!("{seconds} seconds")
    } else {
        format!("{} minutes", (seconds + 59) / 60)
    };
    format!(
        "Too many wrong tries from here. You can try again at {} (in {wait}). The account is not \
         locked and nobody needs to unlock it. Forgotten your password, or lost your phone? IT can \
         give you a one-time link from the server's console (slate-server staff recover).",
        crate::uk_time::format_uk_clock(open_at)
    )
}

/// A recovery link from the server's console works once, within this time of being made.
pub const RECOVERY_LINK_LIFETIME: Duration = Duration::minutes(10);

/// A signed-in browser stays signed in while used within this time...
pub const SESSION_IDLE: Duration = Duration::minutes(30);
/// ...and never longer than a school day.
pub const SESSION_MAX: Duration = Duration::hours(10);

pub fn session_live(
    created_at: DateTime<Utc>,
    last_seen_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    now < created_at + SESSION_MAX && now < last_seen_at + SESSION_IDLE && now >= created_at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_terminal_qr_code_is_the_uri_with_light_modules_drawn() {
        let uri = otpauth_uri("Slate", "demo.dsl", &new_totp_secret());
        let drawn = terminal_qr(&uri).unwrap();
        // Read the drawing back: each character is two modules, top and bottom; a drawn half is
        // light.
        let mut light: Vec<Vec<bool>> = Vec::new();
        for line in drawn.lines() {
            let halves: Vec<(bool, bool)> = line
                .chars()
                .map(|c| match c {
                    '█' => (true, true),
                    '▀' => (true, false),
                    '▄' => (false, true),
                    ' ' => (false, false),
                    other => panic!("unexpected {other:?} in the drawing"),
                })
                .collect();
            light.push(halves.iter().map(|h| h.0).collect());
            light.push(halves.iter().map(|h| h.1).collect());
        }
        let code = qrcode::QrCode::new(uri.as_bytes()).unwrap();
        let width = code.width();
        const QUIET: usize = 4;
        let colours = code.to_colors();
        // An odd number of rows: the last line's lower halves are past the code.
        assert_eq!(light.len(), width + 2 * QUIET + (width % 2), "{drawn}");
        light.truncate(width + 2 * QUIET);
        for y in 0..width {
            for x in 0..width {
                let dark = colours[y * width + x] == qrcode::Color::Dark;
                assert_eq!(light[y + QUIET][x + QUIET], !dark, "module ({x}, {y})");
            }
        }
        assert!(light[..QUIET].iter().flatten().all(|&l| l), "a light quiet zone above");
        assert!(light.iter().all(|row| row[..QUIET].iter().all(|&l| l)), "and to the left");
        assert!(light.iter().all(|row| row.len() == width + 2 * QUIET), "and to the right");
    }

    #[test]
    fn a_held_back_sign_in_says_when_it_opens_and_who_helps() {
        let now: DateTime<Utc> = "2026-11-17T10:14:00Z".parse().unwrap();
        let cases = [
            (Duration::seconds(29), "try again at 10:14 GMT (in 29 seconds)"),
            (Duration::milliseconds(29_200), "(in 30 seconds)"),
            (Duration::minutes(15), "try again at 10:29 GMT (in 15 minutes)"),
        ];
        for (wait, expected) in cases {
            let told = throttled_message(now + wait, now);
            assert!(told.contains(expected), "{told}");
            assert!(told.contains("not locked") && told.contains("slate-server staff recover"));
        }
        let summer: DateTime<Utc> = "2026-06-17T10:14:00Z".parse().unwrap();
        let told = throttled_message(summer + Duration::seconds(30), summer);
        assert!(told.contains("try again at 11:14 BST"), "{told}");
    }

    #[test]
    fn a_refused_sign_in_never_says_which_part_was_wrong() {
        for has_accounts in [true, false] {
            let told = sign_in_refused(has_accounts);
            assert!(!told.contains("password is") && !told.contains("unknown"), "{told}");
        }
        assert!(sign_in_refused(true).contains("another data directory"));
        assert!(sign_in_refused(false).contains("no staff accounts yet"));
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn roles_parse_and_say_which_need_a_second_factor() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.name()), Ok(role));
        }
        assert!(Role::parse("head").unwrap_err().contains("not a role"));
        assert!(
            Role::Dsl.requires_totp()
                && Role::DeputyDsl.requires_totp()
                && Role::ItAdmin.requires_totp()
        );
        assert!(!Role::Teacher.requires_totp());
    }

    #[test]
    fn passwords_hash_and_verify() {
        let phc = hash_password("correct horse battery", HashCost::Cheap);
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(verify_password("correct horse battery", &phc));
        assert!(!verify_password("correct horse batterY", &phc));
        assert!(!verify_password("x", "not a phc string"));
        assert_ne!(phc, hash_password("correct horse battery", HashCost::Cheap), "salted");
    }

    #[test]
    fn unlock_pins_are_six_to_twelve_digits_and_not_easily_guessed() {
        let cases = [
            ("482916", "482916", None),
            ("730418296051", "730418296051", None),
            ("4829160", "4829160", None),
            ("112358", "112358", None),
            ("48291", "48291", Some("PIN: 6 to 12")),
            ("4821", "4821", Some("PIN: 6 to 12")),
            ("4829160000000", "4829160000000", Some("PIN: 6 to 12")),
            ("48291a", "48291a", Some("PIN: 6 to 12")),
            ("４８２９１６", "４８２９１６", Some("PIN: 6 to 12")),
            ("", "", Some("PIN: 6 to 12")),
            ("482916", "482917", Some("PIN again")),
            ("000000", "000000", Some("same digit")),
            ("77777777", "77777777", Some("same digit")),
            ("123456", "123456", Some("run")),
            ("654321", "654321", Some("run")),
            ("890123", "890123", Some("run")),
            ("234567890", "234567890", Some("run")),
            ("121212", "121212", Some("pattern")),
            ("123123", "123123", Some("pattern")),
            ("4545454", "4545454", Some("pattern")),
        ];
        for (pin, confirm, expected) in cases {
            match (check_unlock_pin(pin, confirm), expected) {
                (Ok(()), None) => {}
                (Err(e), Some(part)) => {
                    assert!(e.contains(part), "{pin:?}: {e:?} should say {part:?}")
                }
                (got, _) => panic!("{pin:?}: {got:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn new_passwords_are_checked_with_reasons() {
        let cases = [
            ("short", "short", Some("at least 12")),
            ("long enough pass", "long enough pasS", Some("not the same")),
            ("my-name-amira-k", "my-name-amira-k", Some("username")),
            ("long enough pass", "long enough pass", None),
        ];
        for (password, confirm, expected) in cases {
            let result = check_new_password(password, confirm, "amira");
            match expected {
                None => assert_eq!(result, Ok(())),
                Some(text) => assert!(result.unwrap_err().contains(text), "{password}"),
            }
        }
    }

    #[test]
    fn usernames_are_plain() {
        assert!(check_username("j.smith").is_ok());
        for bad in ["J.Smith", "a", "with space", "x:y", &"a".repeat(33)] {
            assert!(check_username(bad).is_err(), "{bad}");
        }
    }

    /// RFC 6238 appendix B's SHA-1 vectors, last 6 digits (secret "12345678901234567890").
    #[test]
    fn totp_codes_match_the_rfc() {
        let secret = totp_rs::Secret::new(b"12345678901234567890".to_vec().into()).to_base32();
        let cases = [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ];
        for (unix, code) in cases {
            assert_eq!(
                totp_code(&secret, unix / TOTP_STEP_SECONDS).as_deref(),
                Some(code),
                "{unix}"
            );
        }
        assert_eq!(totp_code("not base32!", 1), None);
    }

    #[test]
    fn totp_window_and_replay() {
        let secret = new_totp_secret();
        let now = at("2026-11-17T10:14:15Z");
        let step = totp_step(now);
        let code = |s| totp_code(&secret, s).unwrap();
        let cases: [(String, Option<i64>, Result<i64, TotpRefusal>); 8] = [
            (code(step), None, Ok(step)),
            (code(step - 1), None, Ok(step - 1)),
            (code(step + 1), None, Ok(step + 1)),
            (code(step - 2), None, Err(TotpRefusal::Wrong)),
            (code(step + 2), None, Err(TotpRefusal::Wrong)),
            (code(step), Some(step), Err(TotpRefusal::Replayed)),
            (code(step), Some(step - 1), Ok(step)),
            ("12a456".into(), None, Err(TotpRefusal::Malformed)),
        ];
        for (i, (given, last, expected)) in cases.into_iter().enumerate() {
            assert_eq!(verify_totp(&secret, &given, now, last), expected, "case {i}");
        }
        let spaced = format!("{} {}", &code(step)[..3], &code(step)[3..]);
        assert_eq!(verify_totp(&secret, &spaced, now, None), Ok(step), "spaces are ignored");
    }

    #[test]
    fn only_full_strength_secrets_are_totp_secrets() {
        assert!(is_totp_secret(&new_totp_secret()));
        for weak in ["", "AAAA", &"A".repeat(31), &"a".repeat(32), &"1".repeat(32), &"A".repeat(33)]
        {
            assert!(!is_totp_secret(weak), "{weak}");
        }
    }

    #[test]
    fn otpauth_uris_have_the_standard_shape() {
        assert_eq!(
            otpauth_uri("Slate", "j.smith", "ABC"),
            "otpauth://totp/Slate:j.smith?secret=ABC&issuer=Slate&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn backoff_grows_from_the_first_paid_try_and_stops_at_its_cap() {
        let backoff = Backoff { free: 3, first: Duration::seconds(10), cap: Duration::minutes(1) };
        let cases = [(0, 0), (2, 0), (3, 10), (4, 20), (5, 40), (6, 60), (7, 60), (u32::MAX, 60)];
        for (failures, seconds) in cases {
            assert_eq!(backoff_delay(failures, backoff), Duration::seconds(seconds), "{failures}");
        }
    }

    #[test]
    fn sign_in_throttle_delays_instead_of_locking() {
        let start = at("2026-11-17T10:00:00Z");
        let s = |n: i64| start + Duration::seconds(n);
        let attacker: Option<IpAddr> = Some("10.0.0.66".parse().unwrap());
        let staff_room: Option<IpAddr> = Some("10.0.0.20".parse().unwrap());
        type Step = (&'static str, Option<IpAddr>, DateTime<Utc>, Result<(), DateTime<Utc>>);
        let steps: Vec<Step> = vec![
            // Five free tries from one address at one account, then 30 s, then 60 s.
            ("a.dsl", attacker, s(0), Ok(())),
            ("a.dsl", attacker, s(0), Ok(())),
            ("a.dsl", attacker, s(0), Ok(())),
            ("a.dsl", attacker, s(1), Ok(())),
            ("a.dsl", attacker, s(1), Ok(())),
            ("a.dsl", attacker, s(1), Err(s(31))),
            ("a.dsl", attacker, s(30), Err(s(31))),
            ("a.dsl", attacker, s(31), Ok(())),
            ("a.dsl", attacker, s(32), Err(s(91))),
            // The owner, from elsewhere, is not held back by the attacker's failures.
            ("a.dsl", staff_room, s(32), Ok(())),
            // Another account from the attacker's address still has its own free tries.
            ("t.jones", attacker, s(33), Ok(())),
            // No address (no connect info) is one address like any other.
            ("t.jones", None, s(33), Ok(())),
        ];
        let mut throttle = SignInThrottle::default();
        for (i, (user, address, now, expected)) in steps.into_iter().enumerate() {
            assert_eq!(throttle.admit(user, address, now), expected, "step {i}: {user} {now}");
        }
    }

    #[test]
    fn a_burst_is_counted_before_any_password_is_checked() {
        let now = at("2026-11-17T10:00:00Z");
        let address = Some("10.0.0.66".parse().unwrap());
        let mut throttle = SignInThrottle::default();
        let let_through =
            (0..500).filter(|_| throttle.admit("a.dsl", address, now).is_ok()).count();
        assert_eq!(let_through, PER_ACCOUNT_AND_ADDRESS.free as usize);
        let mut throttle = SignInThrottle::default();
        let names: Vec<String> = (0..500).map(|n| format!("user{n}")).collect();
        let let_through = names.iter().filter(|n| throttle.admit(n, address, now).is_ok()).count();
        assert_eq!(let_through, PER_ADDRESS.free as usize, "many accounts, one address");
    }

    #[test]
    fn a_success_forgets_the_account_but_not_the_address() {
        let now = at("2026-11-17T10:00:00Z");
        let address = Some("10.0.0.20".parse().unwrap());
        let mut throttle = SignInThrottle::default();
        for _ in 0..4 {
            throttle.admit("t.jones", address, now).unwrap();
        }
        throttle.admit("t.jones", address, now).unwrap();
        throttle.succeeded("t.jones", address);
        for _ in 0..5 {
            assert_eq!(throttle.admit("t.jones", address, now), Ok(()), "account forgotten");
        }
        // 4 failures + 5 = 9 on the address; 11 more accounts' tries reach its 20.
        for n in 0..11 {
            assert_eq!(throttle.admit(&format!("u{n}"), address, now), Ok(()), "{n}");
        }
        assert!(throttle.admit("u99", address, now).is_err(), "the address's failures stay");
    }

    #[test]
    fn idle_keys_are_pruned() {
        let now = at("2026-11-17T10:00:00Z");
        let mut throttle = SignInThrottle::default();
        for n in 0..100 {
            let address = Some(IpAddr::from([10, 0, 0, n]));
            throttle.admit(&format!("user{n}"), address, now).unwrap();
        }
        assert_eq!(throttle.len(), 300, "pair, account and address each");
        throttle.admit("late", None, now + Duration::minutes(59)).unwrap();
        assert_eq!(throttle.len(), 303, "not idle long enough");
        throttle.admit("later", None, now + FORGET_TRIES_AFTER).unwrap();
        assert_eq!(throttle.len(), 5, "only `late`, `later` and the shared `-` address are left");
    }

    #[test]
    fn sign_in_usernames_are_checked_before_use() {
        let cases = [
            ("t.jones", Some("t.jones")),
            ("  T.Jones ", Some("t.jones")),
            ("a", None),
            ("correct horse battery!", None),
            ("Amira Khan", None),
            ("", None),
        ];
        for (typed, expected) in cases {
            assert_eq!(sign_in_username(typed).as_deref(), expected, "{typed:?}");
        }
        assert_eq!(sign_in_username(&"a".repeat(256 * 1024)), None);
    }

    #[test]
    fn sessions_expire_when_idle_or_old() {
        let start = at("2026-11-17T08:00:00Z");
        let cases = [
            (start, start + Duration::minutes(29), true),
            (start, start + Duration::minutes(30), false),
            (start + Duration::hours(9), start + Duration::hours(9) + Duration::minutes(10), true),
            (
                start + Duration::hours(9) + Duration::minutes(55),
                start + Duration::hours(10),
                false,
            ),
            (start, start - Duration::seconds(1), false),
        ];
        for (last_seen, now, live) in cases {
            assert_eq!(session_live(start, last_seen, now), live, "{last_seen} {now}");
        }
    }
}
