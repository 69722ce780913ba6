//! The chronology page.

use crate::chronology::{Kind, Line, HARMFUL_LISTS};
use crate::http::layout::{layout, when, Viewer};
use crate::store::PupilRecord;
use maud::{html, Markup};

pub fn chronology_page(
    viewer: &Viewer,
    pupil: Option<&PupilRecord>,
    id: &str,
    lines: &[Line],
) -> Markup {
    let title = match pupil {
        Some(p) => format!("{} ({})", p.name, p.id),
        None => id.to_owned(),
    };
    let count = |kind: Kind| lines.iter().filter(|l| l.kind == kind).count();
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    layout(
        Some(viewer),
        &format!("Chronology: {title}"),
        html! {
            h1 { "Chronology: " (title) }
            @match pupil {
                Some(p) => p { "Class " (p.class) "." },
                None => p.banner { "This pupil is no longer on the roster: their records are kept until the retention period ends." },
            }
            p #summary {
                (plural(count(Kind::Report), "report", "reports")) " with the button, "
                (plural(count(Kind::TellMyTeacher), "\"tell my teacher\"", "\"tell my teacher\"s")) ", "
                (plural(count(Kind::Blocked), "blocked attempt", "blocked attempts")) " in harmful categories, "
                (plural(count(Kind::Session), "session", "sessions")) "."
            }
            p.muted { "Newest first. Blocked attempts shown are those in the lists " (HARMFUL_LISTS.join(", ")) "; every block is on its device's page." }
            p { a href={ "/pupils/" (id) "/export.csv" } { "Download this chronology (CSV)" } }
            @if lines.is_empty() {
                p.empty #no-entries { "Nothing recorded for this pupil yet." }
            } @else {
                table #chronology {
                    thead { tr { th { "When" } th { "What" } th { "Device" } th { "Details" } } }
                    tbody {
                        @for line in lines {
                            tr {
                                td { (when(line.at)) }
                                td { (line.kind.label()) }
                                td {
                                    @if let Some(device) = line.device {
                                        a href={ "/devices/" (device) } { "Device " (device) }
                                    }
                                }
                                td.url {
                                    @match line.incident {
                                        Some(incident) => a href={ "/incidents/" (incident) } { (line.what) },
                                        None => (line.what),
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}
