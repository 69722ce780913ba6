//! IT's list of which device number each Raspberry Pi serial or MAC address gets (issue 15, a
//! class set from one card image): `slate-server device numbers --file serials.csv`. Pure: the
//! CSV is read and checked here (every error names its line), stored by `store`, and the
//! devices ask for their number at `routes::ENROLL_NUMBER` (`features::device_api`).

use slate_protocol::class_set::normalise_serial;
use slate_protocol::DeviceNumber;
use std::collections::HashMap;

/// One row of the list: a serial as `normalise_serial` writes it, and its device number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerialNumber {
    pub serial: String,
    pub device: DeviceNumber,
}

/// Why a list was refused, naming the line (1 is the header).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct SerialsError {
    pub line: u64,
    pub reason: String,
}

/// More rows than device numbers there are.
const MAX_ROWS: usize = DeviceNumber::MAX as usize;

/// Reads `serial,device` rows under that header (a byte-order mark, blank lines and spaces
/// around fields allowed). Refused whole at the first bad line: a serial or number that is not
/// one, a serial or number that appears twice (naming both lines), a row with other than two
/// fields. An empty list (the header alone) clears IT's list.
pub fn parse_serials_csv(text: &str) -> Result<Vec<SerialNumber>, SerialsError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    let mut serial_lines: HashMap<String, u64> = HashMap::new();
    let mut number_lines: HashMap<DeviceNumber, u64> = HashMap::new();
    let mut header_seen = false;
    // The file's own line (csv's line count skips blank lines): from the record's byte offset.
    let line_at = |byte: u64| {
        let mut end = usize::try_from(byte).unwrap_or(usize::MAX).min(text.len());
        // A record's position may be the blank lines before it.
        while matches!(text.as_bytes().get(end), Some(b'\n' | b'\r')) {
            end += 1;
        }
        text.as_bytes()[..end].iter().filter(|b| **b == b'\n').count() as u64 + 1
    };
    for record in reader.records() {
        let record = record.map_err(|e| SerialsError {
            line: e.position().map_or(0, |p| line_at(p.byte())),
            reason: format!("cannot be read as CSV: {e}"),
        })?;
        let line = record.position().map_or(0, |p| line_at(p.byte()));
        let error = |reason: String| SerialsError { line, reason };
        if record.iter().all(str::is_empty) {
            continue;
        }
        if !header_seen {
            let header: Vec<_> = record.iter().map(str::to_ascii_lowercase).collect();
            if header != ["serial", "device"] {
                return Err(error("the first line must be the header `serial,device`".into()));
            }
            header_seen = true;
            continue;
        }
        if record.len() != 2 {
            return Err(error(format!(
                "{} fields; a row is a serial (or MAC address) and a device number",
                record.len()
            )));
        }
        let serial = normalise_serial(&record[0]).map_err(|e| error(format!("serial {e}")))?;
        let device =
            record[1].parse::<u32>().ok().and_then(|n| DeviceNumber::new(n).ok()).ok_or_else(
                || {
                    error(format!(
                        "device `{}` is not a number from 1 to {}",
                        &record[1],
                        DeviceNumber::MAX
                    ))
                },
            )?;
        if let Some(first) = serial_lines.insert(serial.clone(), line) {
            return Err(error(format!("serial {serial} is already on line {first}")));
        }
        if let Some(first) = number_lines.insert(device, line) {
            return Err(error(format!("device {device} is already on line {first}")));
        }
        if rows.len() == MAX_ROWS {
            return Err(error(format!("more than {MAX_ROWS} rows")));
        }
        rows.push(SerialNumber { serial, device });
    }
    if !header_seen {
        return Err(SerialsError {
            line: 1,
            reason: "is empty: the header `serial,device` and a row per device".into(),
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(serial: &str, device: u32) -> SerialNumber {
        SerialNumber { serial: serial.into(), device: DeviceNumber::new(device).unwrap() }
    }

    #[test]
    fn lists_are_read_or_refused_naming_the_line() {
        let good = "\u{feff}Serial,Device\n10000000abcdef01, 12\n\nDC:A6:32:01:02:03,13\n";
        assert_eq!(
            parse_serials_csv(good),
            Ok(vec![row("10000000abcdef01", 12), row("dca632010203", 13)])
        );
        assert_eq!(parse_serials_csv("serial,device\n"), Ok(vec![]));
        for (text, line, reason) in [
            ("", 1, "is empty"),
            ("device,serial\nabc,1\n", 1, "header"),
            ("serial,device\nabc,1\nabd,0\n", 3, "device `0` is not a number from 1 to 9999"),
            ("serial,device\nabc,1\nabd,twelve\n", 3, "device `twelve`"),
            ("serial,device\nabc,1\nzz,2\n", 3, "serial `zz` is not a serial number"),
            ("serial,device\nabc,1\nabc,2\n", 3, "serial abc is already on line 2"),
            ("serial,device\nabc,1\n00ABC,2\n", 3, "serial abc is already on line 2"),
            ("serial,device\nabc,1\n\nabd,1\n", 4, "device 1 is already on line 2"),
            ("serial,device\nabc,1,x\n", 2, "3 fields"),
            ("serial,device\nabc\n", 2, "1 fields"),
        ] {
            let e = parse_serials_csv(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.reason.contains(reason), "{text:?}: {e}");
        }
    }
}
